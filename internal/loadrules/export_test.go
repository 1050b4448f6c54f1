package loadrules_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/loadrules"
)

var schema = datasettest.Schema{Root: "MainRoot", Name: "Shops", EntityType: "Shop", Key: "Id", Columns: []datasettest.Column{
	{Name: "Id", Type: "string"}, {Name: "Name", Type: "string"}, {Name: "Latitude", Type: "double"}, {Name: "Longitude", Type: "double"},
	{Name: "Shape", Type: "anyType"}, {Name: "Open", Type: "long"},
}}

// check reads doc as the archiver does and returns the load's problems.
func check(t *testing.T, doc string) []string {
	t.Helper()
	v := dataset.NewLenientVerifier("")
	c := loadrules.NewExportCheck(0)
	v.OnEntity(func(rec *dataset.Record) { c.Entity(rec, v.Root()) })
	if _, err := io.Copy(v, strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	s := v.Summary()
	return c.Problems(s.Schema, v.Root(), s.Bytes, s.Entities)
}

func TestExportCheck(t *testing.T) {
	shop := func(id, fields string) string { return "  <Shop><Id>" + id + "</Id>" + fields + "</Shop>\n" }
	at := "<Latitude>47.6</Latitude><Longitude>-122.1</Longitude>"
	many := func(n int, fields string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(shop(fmt.Sprint("n", i), fields))
		}
		return b.String()
	}
	cases := []struct {
		name     string
		schema   datasettest.Schema
		entities string
		want     []string // substrings, in order; nil: restorable
	}{
		{"restorable", schema, shop("1", at) + shop("2", "<Shape>POINT (1 2)</Shape>"), nil},
		{"empty data source", schema, "", nil},
		{"no location", schema, shop("1", at) + shop("2", "<Name>x</Name>") + shop("3", ""),
			[]string{"2 entities, the first entity 2: the entity has no location"}},
		{"only a latitude", schema, shop("1", "<Latitude>1</Latitude>"), []string{"entity 1: the entity has no location"}},
		{"bad geography", schema, shop("1", "<Shape>POINT (1 2</Shape>"), []string{"entity 1: property Shape: unbalanced"}},
		{"too many points", schema, shop("1", "<Shape>LINESTRING ("+strings.Repeat("1 2,", loadrules.MaxGeographyPoint)+"1 2)</Shape>"),
			[]string{"more than 100000 points"}},
		{"long string", schema, shop("1", at+"<Name>"+strings.Repeat("é", loadrules.MaxStringRunes+1)+"</Name>"), []string{"property Name is longer than 2560"}},
		{"string at the limit", schema, shop("1", at+"<Name>"+strings.Repeat("é", loadrules.MaxStringRunes)+"</Name>"), nil},
		{"long key", schema, shop(strings.Repeat("k", 51), at), []string{"entity ID is longer than 50"}},
		{"missing key", schema, shop("", at), []string{"entity ID Id is missing"}},
		{"bad long", schema, shop("1", at+"<Open>nine</Open>"), []string{"property Open is not a valid xs:long"}},
		{"duplicate key", schema, shop("1", at) + shop("1", at), []string{"entity 2: the entity ID is used by an earlier entity"}},
		{"no location column", datasettest.Schema{Root: "MainRoot", Name: "Shops", EntityType: "Shop", Key: "Id",
			Columns: []datasettest.Column{{Name: "Id", Type: "string"}}}, shop("1", ""),
			[]string{"schema: the schema must include Latitude and Longitude"}},
		{"key not a string", datasettest.Schema{Root: "MainRoot", Name: "Shops", EntityType: "Shop", Key: "Id",
			Columns: []datasettest.Column{{Name: "Id", Type: "long"}, {Name: "Shape", Type: "anyType"}}}, "",
			[]string{"schema: the entity ID Id must be of type xs:string"}},
		{"bad property name", datasettest.Schema{Root: "MainRoot", Name: "Shops", EntityType: "Shop", Key: "Id",
			Columns: append([]datasettest.Column{{Name: "__x", Type: "string"}}, schema.Columns...)}, "",
			[]string{`schema: property name "__x" is not valid`}},
		{"capped reasons", schema, many(3, "") + shop("a", "<Open>x</Open>") + shop("b", "<Latitude>x</Latitude>") +
			shop("c", "<Longitude>x</Longitude>") + shop("d", "<Latitude>99</Latitude><Longitude>1</Longitude>") +
			shop("e", "<Latitude>1</Latitude><Longitude>199</Longitude>") + shop("f", "<Shape>x</Shape>") +
			shop("g", "<Shape>POINT (1 2</Shape>") + shop("h", "<Shape>POINT (1 2 #)</Shape>") + shop("", at) +
			shop(strings.Repeat("k", 51), at) + shop("n0", at) + shop("i", "<Open>1.5</Open>") + shop("j", "<Unknown/>"),
			[]string{"3 entities, the first entity 1: the entity has no location", "entity 4: property Open", "Latitude is outside",
				"Longitude is outside", "2 more entities with other faults"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := check(t, tc.schema.Header()+tc.entities+tc.schema.Footer())
			if tc.want == nil {
				if got != nil {
					t.Fatalf("problems %q, want none", got)
				}
				return
			}
			all := strings.Join(got, "\n")
			at := 0
			for _, w := range tc.want {
				i := strings.Index(all[at:], w)
				if i < 0 {
					t.Fatalf("problems %q: no %q (in order)", got, w)
				}
				at += i
			}
			// Redacted: rules, names and entity numbers, never a value.
			for _, leak := range []string{"nine", "kkkk", "éé", "(1 2", "199", "47.6"} {
				if strings.Contains(all, leak) {
					t.Errorf("problems carry the value %q: %q", leak, got)
				}
			}
		})
	}
}

func TestLimits(t *testing.T) {
	c := loadrules.NewExportCheck(0)
	got := strings.Join(c.Problems(nil, "", loadrules.MaxBytes+1, loadrules.MaxEntities+1), "\n")
	for _, w := range []string{"size: 300000001 bytes, the load limit is 300000000", "entity count: 200001 entities, the load limit is 200000"} {
		if !strings.Contains(got, w) {
			t.Errorf("problems %q: no %q", got, w)
		}
	}
	if p := c.Problems(nil, "", loadrules.MaxBytes, loadrules.MaxEntities); p != nil {
		t.Errorf("at the limits: %q", p)
	}
}
