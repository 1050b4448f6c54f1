package archive

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/sds"
)

// checkAll feeds doc to a fresh checker in chunks of the given size and
// returns the entity count and the error.
func checkAll(doc []byte, chunk int) (int64, error) {
	var c dataSetChecker
	for len(doc) > 0 {
		n := min(chunk, len(doc))
		if _, err := c.Write(doc[:n]); err != nil {
			return c.entities, err
		}
		doc = doc[n:]
	}
	return c.entities, c.Close()
}

func TestCheckerAcceptsExports(t *testing.T) {
	example, err := os.ReadFile("testdata/get-downloaded-data-2.xml")
	if err != nil {
		t.Fatal(err)
	}
	small := testDataSet{Name: "MyDataSourceName", Entities: 25, Padding: 3}.String()
	docs := map[string]struct {
		doc      string
		entities int64
	}{
		"docs example":         {string(example), 1},
		"generated":            {small, 25},
		"no entities":          {testDataSet{Name: "Empty"}.String(), 0},
		"byte order mark":      {"\xEF\xBB\xBF" + small, 25},
		"comments and PIs":     {"<!-- before -->\n" + strings.Replace(small, "<MainRoot>", "<MainRoot><!-- a - b -->\n<?pi x?>", 1) + "<!--after-->\n", 25},
		"cdata and attributes": {strings.Replace(small, "<Locality>Redmond</Locality>", "<Locality a='1' b = \"x>y\"><![CDATA[<Red]]mond>]]]></Locality>", 1), 25},
		"self-closing fields":  {strings.Replace(small, "<Phone>303-555-0188</Phone>", "<Phone/><Open ></Open >", 1), 25},
		"prefixed entities":    {strings.ReplaceAll(small, testEntityType+">", "p:"+testEntityType+">"), 25},
	}
	for name, tc := range docs {
		t.Run(name, func(t *testing.T) {
			want, err := sds.SummarizeDataSet(strings.NewReader(tc.doc))
			if err != nil {
				t.Fatalf("reference SummarizeDataSet rejects the test document: %v", err)
			}
			if want.Entities != tc.entities {
				t.Fatalf("reference counts %d entities, test says %d", want.Entities, tc.entities)
			}
			for _, chunk := range []int{1, 2, 3, 7, 64, 4096, len(tc.doc)} {
				n, err := checkAll([]byte(tc.doc), chunk)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if n != tc.entities {
					t.Errorf("chunk %d: %d entities, want %d", chunk, n, tc.entities)
				}
			}
		})
	}
}

func TestCheckerRejects(t *testing.T) {
	good := testDataSet{Name: "DS", Entities: 3}.String()
	replace := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	cases := map[string]struct{ doc, wantMsg string }{
		"empty":                 {"", "no root element"},
		"whitespace only":       {" \n", "no root element"},
		"json":                  {`{"errorDetails":["nope"]}`, "not XML"},
		"html":                  {"<html><head></head><body>503</body></html>", "before its xs:schema"},
		"text before root":      {"x" + good, "not XML"},
		"text after root":       {good + "x", "text after its root element"},
		"second root":           {good + "<MainRoot/>", "second root element"},
		"entity before schema":  {replace("  <xs:schema", "<"+testEntityType+"/>\n  <xs:schema"), "before its xs:schema"},
		"no schema":             {"<MainRoot><xs:schema/></MainRoot>", "schema"},
		"mismatched end tag":    {replace("</Locality>", "</Locale>"), "closes <Locality>"},
		"unclosed":              {strings.TrimSuffix(good, testFooter), "ends inside element <MainRoot>"},
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
				_, err := checkAll([]byte(tc.doc), chunk)
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

// TestCheckerRejectsEveryPrefix: wherever an export is cut before its end
// tag, the cut is detected. This is what catches a body longer than its
// Content-Length, which the HTTP client silently stops reading at.
func TestCheckerRejectsEveryPrefix(t *testing.T) {
	doc := []byte(testDataSet{Name: "DS", Entities: 4, Padding: 2}.String())
	end := bytes.LastIndex(doc, []byte("</MainRoot>")) + len("</MainRoot>")
	for cut := 0; cut < end; cut++ {
		if _, err := checkAll(doc[:cut], 1<<20); err == nil {
			t.Fatalf("prefix of %d bytes accepted: ...%q", cut, doc[max(0, cut-20):cut])
		}
	}
	if _, err := checkAll(doc[:end], 1<<20); err != nil {
		t.Fatalf("document without its final newline rejected: %v", err)
	}
}

// TestCheckerRandomChunks: the verdict does not depend on how the stream
// is split into reads.
func TestCheckerRandomChunks(t *testing.T) {
	doc := []byte(testDataSet{Name: "DS", Entities: 200, Padding: 10}.String())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var c dataSetChecker
		rest := doc
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(300))
			if _, err := c.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := c.Close(); err != nil || c.entities != 200 {
			t.Fatalf("entities %d, err %v", c.entities, err)
		}
	}
}

// FuzzChecker: whatever the checker accepts as a DataSet, the reference
// parser (encoding/xml through sds.SummarizeDataSet) accepts as a DataSet
// with the same number of entities. The checker does not look at entity
// references or character encoding, so inputs where those are what the
// reference objects to are not counted against it.
func FuzzChecker(f *testing.F) {
	good := testDataSet{Name: "DS", Entities: 2}.String()
	f.Add([]byte(good))
	example, _ := os.ReadFile("testdata/get-downloaded-data-2.xml")
	f.Add(example)
	for _, seed := range []string{
		strings.Replace(good, "<Locality>Redmond", "<Locality a='1'><![CDATA[x]]><!--c--><?p?>Redmond", 1),
		strings.Replace(good, "<Phone>303-555-0188</Phone>", "<Phone/>", 1),
		"\xEF\xBB\xBF" + good,
		"<a><xs:schema><xs:choice><xs:element name='E'/></xs:choice></xs:schema><E/><p:E></p:E></a>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		n, err := checkAll(doc, 13)
		if err != nil {
			return
		}
		want, rerr := sds.SummarizeDataSet(bytes.NewReader(doc))
		if rerr != nil {
			for _, gap := range checkerGaps {
				if strings.Contains(rerr.Error(), gap) {
					return
				}
			}
			t.Fatalf("checker accepted (%d entities) what the reference rejects: %v", n, rerr)
		}
		if want.Entities != n {
			t.Fatalf("checker counts %d entities, reference %d", n, want.Entities)
		}
	})
}

// checkerGaps are the reference parser's objections the checker does not
// share: it leaves entity references, character encoding and legality, and
// the content of comments and text unchecked.
var checkerGaps = []string{
	"invalid character entity",
	"invalid UTF-8",
	"illegal character code",
	"not allowed in comments",
	"unescaped ]]>",
}

// benchmarkExports are about 32 MB each: entities padded like large real
// records, and plain ones (all markup, the checker's worst case).
var benchmarkExports = []struct {
	name string
	data testDataSet
}{
	{"padded", testDataSet{Name: "DS", Entities: 40_000, Padding: 400}},
	{"plain", testDataSet{Name: "DS", Entities: 60_000}},
}

// BenchmarkDataSetChecker measures the checker Copy uses.
func BenchmarkDataSetChecker(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(e.data.Size())
			for b.Loop() {
				var c dataSetChecker
				if _, err := e.data.WriteTo(&c); err != nil {
					b.Fatal(err)
				}
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSummarizeDataSet measures the encoding/xml alternative on the
// same exports, fed through an io.Pipe as it would be in a copy.
func BenchmarkSummarizeDataSet(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(e.data.Size())
			for b.Loop() {
				pr, pw := io.Pipe()
				go func() { _, err := e.data.WriteTo(pw); pw.CloseWithError(err) }()
				if _, err := sds.SummarizeDataSet(pr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate is the cost of producing the exports, included in the
// figures above.
func BenchmarkGenerate(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(e.data.Size())
			for b.Loop() {
				e.data.WriteTo(io.Discard)
			}
		})
	}
}
