package dataset

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/dataset/datasettest"
)

// lenientChunks feeds doc to a fresh lenient Verifier in chunks of the
// given size.
func lenientChunks(doc []byte, name string, chunk int) (*Verifier, error) {
	v := NewLenientVerifier(name)
	for len(doc) > 0 {
		n := min(chunk, len(doc))
		if _, err := v.Write(doc[:n]); err != nil {
			return v, err
		}
		doc = doc[n:]
	}
	return v, v.Close()
}

// TestLenientProblems: flaws that leave an export readable are reported,
// in order, instead of failing it; a sound export has no problems.
func TestLenientProblems(t *testing.T) {
	good := datasettest.Export{Name: "MyDataSourceName", Entities: 5}.String()
	empty := datasettest.Export{Name: "MyDataSourceName"}.String()
	entity := "<" + datasettest.EntityType + ">"
	cases := []struct {
		name     string
		doc      string
		expected int64
		want     []string // substrings, one per problem in order; nil for none
	}{
		{"all checks pass", good, 5, nil},
		{"name in another case", strings.Replace(good, `id="MyDataSourceName"`, `id="mydatasourcename"`, 1), 5, nil},
		{"more reported", good, 6, []string{"entity count: the export has 5 entities, the job reported 6"}},
		{"fewer reported", good, 4, []string{"the export has 5 entities, the job reported 4"}},
		{"no total", good, NoTotal, []string{"the job reported no total, so the 5 entities could not be checked"}},
		{"empty, total 0", empty, 0, nil},
		{"empty, no total", empty, NoTotal, []string{"the job reported no total, so the 0 entities could not be checked"}},
		{"entities, total 0", good, 0, []string{"entity count: the export has 5 entities, the job reported 0"}},
		{"other data source", strings.Replace(good, `id="MyDataSourceName"`, `id="OtherSource"`, 1), 5, []string{`schema: the xs:schema describes data source "OtherSource", not "MyDataSourceName"`}},
		{"undefined entity", strings.Replace(good, "<Locality>", "<Locality>&nbsp;", 1), 5, []string{"text: 1 undefined entity references (the first &nbsp;)"}},
		{"bare ampersand", strings.Replace(good, "<Locality>", "<Locality>A & B ", 2), 5, []string{"text: 2 bare '&'"}},
		{"invalid UTF-8", strings.Replace(good, "<Locality>", "<Locality>caf\xe9 ", 1), 5, []string{"text: invalid UTF-8 (first at byte"}},
		{"control character", strings.Replace(good, "<Locality>", "<Locality>\x01", 1), 5, []string{"text: 1 control characters"}},
		{"another element", strings.Replace(good, entity, "<Stray/>"+entity, 1), 5, []string{"structure: 1 elements other than <MyDataSourceEntityType> among the entities, the first <Stray>"}},
		{"several at once", strings.Replace(good, "<Locality>", "<Locality>&bogus;", 1), NoTotal, []string{"undefined entity", "no total"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 64, len(tc.doc)} {
				v, err := lenientChunks([]byte(tc.doc), "MyDataSourceName", chunk)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				got := v.Problems(tc.expected)
				if len(got) != len(tc.want) {
					t.Fatalf("chunk %d: problems %q, want %d", chunk, got, len(tc.want))
				}
				for i, w := range tc.want {
					if !strings.Contains(got[i], w) {
						t.Errorf("chunk %d: problem %d is %q, want it to mention %q", chunk, i, got[i], w)
					}
				}
			}
		})
	}
}

// TestLenientRejects: an export that is not complete fails a lenient
// Verifier as it fails a strict one.
func TestLenientRejects(t *testing.T) {
	good := datasettest.Export{Name: "DS", Entities: 3}.String()
	replace := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	cases := map[string]struct{ doc, wantMsg string }{
		"empty":                 {"", "no root element"},
		"whitespace only":       {" \n", "no root element"},
		"json":                  {`{"errorDetails":["nope"]}`, "not XML"},
		"html":                  {"<html><head></head><body>503</body></html>", "before its xs:schema"},
		"text before root":      {"x" + good, "not XML"},
		"text after root":       {good + "x", "text after its root element"},
		"second root":           {good + "<MainRoot/>", "second root element"},
		"entity before schema":  {replace("  <xs:schema", "<"+datasettest.EntityType+"/>\n  <xs:schema"), "before its xs:schema"},
		"no schema":             {"<MainRoot><xs:schema/></MainRoot>", "schema"},
		"mismatched end tag":    {replace("</Locality>", "</Locale>"), "closes <Locality>"},
		"unclosed":              {strings.TrimSuffix(good, datasettest.Footer), "ends inside element <MainRoot>"},
		"cut in tag":            {good[:len(good)-5], "ends inside a tag"},
		"cut in entity":         {good[:len(good)/2+7], "ends inside"},
		"end without start":     {good + "</MainRoot>", "without a start tag"},
		"lt in attribute":       {replace(`id="DS"`, `id="<DS"`), "'<' in an attribute value"},
		"unquoted attribute":    {replace(`id="DS"`, `id=DS`), "unquoted"},
		"attribute no value":    {replace(`id="DS"`, `id`), "without a value"},
		"attributes run on":     {replace(`xmlns="" `, `xmlns=""`), "after an attribute value"},
		"lt in tag":             {replace("<Locality>", "<Locality<>"), "in the name"},
		"doctype":               {"<!DOCTYPE x>" + good, "declaration"},
		"cdata outside root":    {"<![CDATA[x]]>" + good, "CDATA section outside"},
		"broken comment":        {"<!-x-->" + good, "malformed comment"},
		"broken bom":            {"\xEF\xBB" + good, "byte order mark"},
		"digit name":            {replace("<Locality>", "<9Locality>"), "followed by"},
		"unterminated comment":  {good + "<!-- x", "ends inside a tag, comment"},
		"schema without choice": {replace(`<xs:choice minOccurs="0" maxOccurs="unbounded">`, `<xs:sequence>`), ""},
		"too deep":              {"<a><xs:schema>" + strings.Repeat("<b>", maxDepth) + "", "nested more than"},
		"long name":             {"<" + strings.Repeat("n", maxNameBytes+1) + ">", "longer than"},
		"schema too large":      {"<a><xs:schema>" + strings.Repeat("<!-- padding -->", maxSchemaBytes/16+1), "no complete xs:schema"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, chunk := range []int{1, 5, 4096} {
				_, err := lenientChunks([]byte(tc.doc), "DS", chunk)
				if err == nil {
					t.Fatalf("chunk %d: accepted", chunk)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("chunk %d: error %q does not mention %q", chunk, err, tc.wantMsg)
				}
			}
		})
	}
}

// TestLenientRejectsEveryPrefix: wherever an export is cut before its end
// tag, the cut is detected. This is what catches a body longer than its
// Content-Length, which the HTTP client silently stops reading at.
func TestLenientRejectsEveryPrefix(t *testing.T) {
	doc := []byte(datasettest.Export{Name: "DS", Entities: 4, Padding: 2}.String())
	end := bytes.LastIndex(doc, []byte("</MainRoot>")) + len("</MainRoot>")
	for cut := 0; cut < end; cut++ {
		if _, err := lenientChunks(doc[:cut], "DS", 1<<20); err == nil {
			t.Fatalf("prefix of %d bytes accepted: ...%q", cut, doc[max(0, cut-20):cut])
		}
	}
	if _, err := lenientChunks(doc[:end], "DS", 1<<20); err != nil {
		t.Fatalf("document without its final newline rejected: %v", err)
	}
}

// TestLenientRandomChunks: the verdict does not depend on how the stream
// is split into writes.
func TestLenientRandomChunks(t *testing.T) {
	doc := []byte(datasettest.Export{Name: "DS", Entities: 200, Padding: 10}.String())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		v := NewLenientVerifier("DS")
		rest := doc
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(300))
			if _, err := v.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := v.Close(); err != nil || v.Summary().Entities != 200 || v.Problems(200) != nil {
			t.Fatalf("entities %d, err %v, problems %q", v.Summary().Entities, err, v.Problems(200))
		}
	}
}

// TestLenientTextAnyChunking: the text checks find the same problems
// whatever the chunks the export arrives in.
func TestLenientTextAnyChunking(t *testing.T) {
	good := datasettest.Export{Name: "MyDataSourceName", Entities: 3}.String()
	doc := strings.Replace(good, "<Locality>", "<Locality>&nbsp;&amp;&#233;&#xE9;A & B &;caf\xc3\xa9 \xe9\xff ", 1)
	doc = strings.Replace(doc, `<AdminDistrict>`, `<AdminDistrict x="&x;">`, 1)
	for _, size := range []int{1, 2, 3, 5, 64, len(doc)} {
		v, err := lenientChunks([]byte(doc), "MyDataSourceName", size)
		if err != nil {
			t.Fatalf("chunk %d: %v", size, err)
		}
		f := v.sc.lenient
		if f.badRefs != 2 || f.firstRef != "&nbsp;" || f.bareAmps != 2 || f.utf8.bad != 2 {
			t.Errorf("chunk %d: %d undefined (first %s), %d bare, %d invalid UTF-8", size, f.badRefs, f.firstRef, f.bareAmps, f.utf8.bad)
		}
	}
}

// FuzzLenientVerifier: a lenient Verifier accepts whatever a strict one
// does, with the same count and no problems; what it refuses, a strict one
// refuses too.
func FuzzLenientVerifier(f *testing.F) {
	good := datasettest.Export{Name: "DS", Entities: 2}.String()
	for _, seed := range []string{
		good,
		strings.Replace(good, "<Locality>Redmond", "<Locality a='1'><![CDATA[x]]><!--c--><?p?>Redmond", 1),
		strings.Replace(good, "<Locality>", "<Locality>&nbsp; A & B \xe9\x01", 1),
		strings.Replace(good, "<"+datasettest.EntityType+">", "<Stray/><"+datasettest.EntityType+">", 1),
		"\xEF\xBB\xBF" + good,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		strict, serr := verifyChunks(doc, "DS", 13)
		v, lerr := lenientChunks(doc, "DS", 13)
		switch {
		case serr == nil && lerr != nil:
			t.Fatalf("strict accepts, lenient refuses: %v", lerr)
		case lerr != nil:
			return
		case serr == nil && (v.Summary().Entities != strict.Entities || v.Problems(strict.Entities) != nil):
			t.Fatalf("strict counts %d; lenient %d with problems %q", strict.Entities, v.Summary().Entities, v.Problems(strict.Entities))
		}
	})
}
