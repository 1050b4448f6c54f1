package dataset

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sdsops/sdsops/internal/dataset/datasettest"
)

func TestReaderSchema(t *testing.T) {
	rd := NewReader(strings.NewReader(readFile(t, "load-data-source-data-schema-and-sample-input-3.xml")), "FourthCoffeeSample")
	s, err := rd.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if s.DataSetName != "FourthCoffeeSample" || s.EntityType != "FourthCoffeeShops" || s.Key != "EntityID" || len(s.Columns) != 23 {
		t.Fatalf("schema %s/%s key %s, %d columns", s.DataSetName, s.EntityType, s.Key, len(s.Columns))
	}
	want := map[string]Type{"AddressLine": String, "Longitude": Double, "StoreLayout": Geography,
		"IsWiFiHotSpot": Boolean, "Open": Long, "CreatedDate": DateTime}
	for name, typ := range want {
		if i := s.Index(name); i < 0 || s.Columns[i].Type != typ {
			t.Errorf("column %s: index %d, want type %v", name, i, typ)
		}
	}
	if s.Index("Nope") != -1 {
		t.Error("Index of a missing column is not -1")
	}
}

func TestReaderRecords(t *testing.T) {
	doc := readFile(t, "load-data-source-data-schema-and-sample-input-3.xml")
	// One byte at a time: values split across reads come out whole.
	rd := NewReader(iotest.OneByteReader(strings.NewReader(doc)), "FourthCoffeeSample")
	s, err := rd.Schema()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return s.Index(name) }
	first, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if v := first.Value(col("AddressLine")); v.Text() != "Løven" || !v.Present || v.Type != String {
		t.Errorf("AddressLine %+v", v)
	}
	if v, err := first.Value(col("EntityID")).Text(), error(nil); v != "-22067" || err != nil {
		t.Errorf("EntityID %q", v)
	}
	if v, err := first.Value(col("Longitude")).Double(); v != 9.87443416667 || err != nil {
		t.Errorf("Longitude %v %v", v, err)
	}
	if v, err := first.Value(col("Open")).Long(); v != 700 || err != nil {
		t.Errorf("Open %v %v", v, err)
	}
	if v, err := first.Value(col("AcceptsCoffeeCards")).Bool(); !v || err != nil {
		t.Errorf("AcceptsCoffeeCards %v %v", v, err)
	}
	if v, err := first.Value(col("CreatedDate")).Time(); err != nil || !v.Equal(time.Date(2010, 11, 11, 1, 19, 36, 435049400, time.UTC)) {
		t.Errorf("CreatedDate %v %v", v, err)
	}
	if v := first.Value(col("StoreLayout")); !v.Present || !strings.HasPrefix(v.Text(), "POLYGON((9.86445 57.13876,") {
		t.Errorf("StoreLayout %q", v.Text())
	}
	second, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if v := second.Value(col("StoreLayout")); v.Present || len(v.Raw) != 0 {
		t.Errorf("omitted StoreLayout is %+v", v)
	}
	if v := second.Value(col("Manager")); v.Text() != "Phil Spencer" {
		t.Errorf("Manager %q", v.Text())
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after the last entity: %v", err)
	}
	if rd.Entities() != 2 || rd.Offset() != int64(len(doc)) {
		t.Errorf("entities %d, offset %d", rd.Entities(), rd.Offset())
	}
}

func TestReaderValues(t *testing.T) {
	good := datasettest.Export{Name: "DS", Entities: 1}.String()
	cases := map[string]struct {
		old, new string
		column   string
		present  bool
		text     string
	}{
		"plain":           {"", "", "Locality", true, "Redmond"},
		"references":      {">Redmond<", ">R&#233;&#xE9;&lt;&amp;&gt;&quot;&apos;<", "Locality", true, "Réé<&>\"'"},
		"cdata":           {">Redmond<", "><![CDATA[<a&b>]]]><", "Locality", true, "<a&b>]"},
		"mixed":           {">Redmond<", ">a<!-- c --><?p x?>b<![CDATA[c]]>&amp;<", "Locality", true, "abc&"},
		"empty element":   {"<Locality>Redmond</Locality>", "<Locality/>", "Locality", true, ""},
		"empty pair":      {"<Locality>Redmond</Locality>", "<Locality></Locality>", "Locality", true, ""},
		"omitted":         {"<Locality>Redmond</Locality>", "", "Locality", false, ""},
		"whitespace kept": {">Redmond<", "> Red mond\n<", "Locality", true, " Red mond\n"},
		"attributes":      {"<Locality>", `<Locality xml:lang="en">`, "Locality", true, "Redmond"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			doc := strings.Replace(good, tc.old, tc.new, 1)
			rd := NewReader(strings.NewReader(doc), "DS")
			rec, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			v := rec.Value(rec.Schema().Index(tc.column))
			if v.Present != tc.present || v.Text() != tc.text {
				t.Errorf("present %v %q, want %v %q", v.Present, v.Text(), tc.present, tc.text)
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Errorf("end: %v", err)
			}
		})
	}
}

func TestReaderRejects(t *testing.T) {
	good := datasettest.Export{Name: "DS", Entities: 2}.String()
	cases := map[string]struct{ old, new, wantMsg string }{
		"unknown field":  {"<Locality>", "<Town>x</Town><Locality>", "<Town> element, which is not a column"},
		"repeated field": {"<Locality>", "<Locality>x</Locality><Locality>", "two <Locality> elements"},
		"nested element": {"<Locality>Redmond", "<Locality><b>Redmond</b>", "holds an element <b>"},
		"value too long": {">Redmond<", ">" + strings.Repeat("x", maxValueBytes+1) + "<", "longer than"},
		"wrong name":     {`id="DS"`, `id="Other"`, "not \"DS\""},
		"cut":            {"</MainRoot>", "", "ends inside element"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(strings.NewReader(strings.Replace(good, tc.old, tc.new, 1)), "DS")
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantMsg)
			}
		})
	}
}

func TestValueParsing(t *testing.T) {
	v := func(s string) Value { return Value{Raw: []byte(s), Present: true} }
	for _, tc := range []struct {
		in   string
		long int64
		ok   bool
	}{{"700", 700, true}, {" -9223372036854775808 ", -9223372036854775808, true}, {"9223372036854775808", 0, false}, {"1.5", 0, false}, {"", 0, false}} {
		if n, err := v(tc.in).Long(); n != tc.long || (err == nil) != tc.ok {
			t.Errorf("Long(%q) = %d, %v", tc.in, n, err)
		}
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{{"1.5e3", true}, {"-INF", true}, {"NaN", true}, {"inf", false}, {"0x10", false}, {"1_000", false}, {"", false}} {
		if _, err := v(tc.in).Double(); (err == nil) != tc.ok {
			t.Errorf("Double(%q): %v", tc.in, err)
		}
	}
	for in, want := range map[string]bool{"true": true, "1": true, "false": false, " 0 ": false} {
		if b, err := v(in).Bool(); b != want || err != nil {
			t.Errorf("Bool(%q) = %v, %v", in, b, err)
		}
	}
	if _, err := v("yes").Bool(); err == nil {
		t.Error("Bool(yes) accepted")
	}
	for in, want := range map[string]time.Time{
		"2016-03-01T08:00:00.0000000Z": time.Date(2016, 3, 1, 8, 0, 0, 0, time.UTC),
		"2016-03-01T08:00:00":          time.Date(2016, 3, 1, 8, 0, 0, 0, time.UTC),
		"2016-03-01T10:00:00.5+02:00":  time.Date(2016, 3, 1, 8, 0, 0, 5e8, time.UTC),
	} {
		if got, err := v(in).Time(); err != nil || !got.Equal(want) {
			t.Errorf("Time(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := v("01/03/2016").Time(); err == nil {
		t.Error("Time(01/03/2016) accepted")
	}
}
