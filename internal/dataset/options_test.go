package dataset

import (
	"io"
	"strings"
	"testing"
)

// loadDoc is a small upload whose schema and fields disagree in case, and
// whose second entity has fields a load fails it for.
const loadDoc = `<Root><xs:schema id="T" xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="T"><xs:complexType><xs:choice><xs:element name="E"><xs:complexType><xs:sequence>` +
	`<xs:element name="Id" type="xs:string"/><xs:element name="Latitude" type="xs:double"/></xs:sequence></xs:complexType></xs:element></xs:choice></xs:complexType>` +
	`<xs:unique name="C"><xs:selector xpath=".//E"/><xs:field xpath="ID"/></xs:unique></xs:element></xs:schema>` +
	`<E><ID>a</ID><latitude>1</latitude></E>` +
	`<E><Id>b</Id>%s<Latitude>2</Latitude></E>` +
	`<E><Id>c</Id></E></Root>`

func TestReaderOptions(t *testing.T) {
	for _, tc := range []struct {
		name, second string
		opts         []ReaderOption
		wantErr      string // of the document; "" when it reads to its end
		wantRecErr   string // of the second record
		wantLat      bool   // the second record keeps its Latitude
	}{
		{"strictCase", "", nil, `key "ID" is not a column`, "", false},
		{"fold", "", []ReaderOption{FoldNames()}, "", "", true},
		{"foldUnknownField", "<Height>3</Height>", []ReaderOption{FoldNames()}, "not a column of E", "", false},
		{"unknownField", "<Height>3</Height>", []ReaderOption{FoldNames(), RecordErrors()}, "", "<Height> element, which is not a column", true},
		{"twice", "<ID>b2</ID>", []ReaderOption{FoldNames(), RecordErrors()}, "", "two <ID> elements", true},
		{"nested", "<Latitude><x/>2</Latitude>", []ReaderOption{FoldNames(), RecordErrors()}, "", "holds an element <x>", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(loadDoc, "%s", tc.second, 1)
			rd := NewReader(strings.NewReader(doc), "T", tc.opts...)
			var recs []string
			var err error
			for {
				var rec *Record
				if rec, err = rd.Next(); err != nil {
					break
				}
				s := rec.Schema()
				if len(recs) == 1 {
					if got := rec.Err(); tc.wantRecErr == "" && got != nil || tc.wantRecErr != "" && (got == nil || !strings.Contains(got.Error(), tc.wantRecErr)) {
						t.Errorf("second record: Err() = %v, want %q", got, tc.wantRecErr)
					}
					if lat := rec.Value(s.Index("LATITUDE")); lat.Present != tc.wantLat || lat.Present && lat.Text() != "2" {
						t.Errorf("second record Latitude %+v", lat)
					}
				} else if rec.Err() != nil {
					t.Errorf("record %d: %v", len(recs), rec.Err())
				}
				recs = append(recs, rec.Value(s.Index(s.Key)).Text())
			}
			if tc.wantErr == "" && err != io.EOF || tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && strings.Join(recs, ",") != "a,b,c" || rd.Root() != "Root" {
				t.Errorf("keys %v, root %q", recs, rd.Root())
			}
		})
	}
}
