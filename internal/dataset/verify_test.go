package dataset

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/testenv/cputime"
)

// verifyChunks feeds doc to a fresh Verifier in chunks of the given size.
func verifyChunks(doc []byte, name string, chunk int) (Summary, error) {
	v := NewVerifier(name)
	for len(doc) > 0 {
		n := min(chunk, len(doc))
		if _, err := v.Write(doc[:n]); err != nil {
			return v.Summary(), err
		}
		doc = doc[n:]
	}
	return v.Summary(), v.Close()
}

// referenceCount is the slow, obvious reading of an export with
// encoding/xml, the yardstick for the scanner.
func referenceCount(doc []byte) (string, string, int64, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var (
		depth      int
		roots      int
		n          int64
		schemaDone bool
		schemaAt   int
		name, typ  string
		choice     int
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return name, typ, n, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if roots++; roots > 1 {
					return name, typ, n, errors.New("second root")
				}
			case depth == 2 && !schemaDone && schemaAt == 0:
				if t.Name.Local != "schema" {
					return name, typ, n, errors.New("no schema first")
				}
				schemaAt = depth
				name = attr(t, "id")
			case schemaAt > 0 && t.Name.Local == "choice" && choice == 0:
				choice = depth
			case schemaAt > 0 && choice > 0 && depth == choice+1 && typ == "":
				typ = attr(t, "name")
			case depth == 2 && schemaDone:
				if t.Name.Local != typ {
					return name, typ, n, errors.New("not an entity")
				}
				n++
			}
		case xml.EndElement:
			if depth == choice {
				choice = 0
			}
			if depth == 2 && schemaAt > 0 && !schemaDone {
				schemaDone = true
			}
			depth--
		case xml.Directive:
			return name, typ, n, errors.New("directive")
		}
	}
	if depth != 0 || roots == 0 || !schemaDone || typ == "" {
		return name, typ, n, errors.New("incomplete")
	}
	return name, typ, n, nil
}

func readFile(t testing.TB, name string) string {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifierAccepts(t *testing.T) {
	small := datasettest.Export{Name: "MyDataSourceName", Entities: 25, Padding: 3}.String()
	cases := map[string]struct {
		doc, name string
		entities  int64
	}{
		"docs download example": {readFile(t, "get-downloaded-data-2.xml"), "MyDataSourceName", 1},
		"docs load example":     {readFile(t, "load-data-source-data-schema-and-sample-input-3.xml"), "FourthCoffeeSample", 2},
		"generated":             {small, "MyDataSourceName", 25},
		"name in another case":  {small, "mydatasourcename", 25},
		"any name":              {small, "", 25},
		"no entities":           {datasettest.Export{Name: "Empty"}.String(), "Empty", 0},
		"byte order mark":       {"\xEF\xBB\xBF" + small, "MyDataSourceName", 25},
		"comments and PIs":      {"<!-- before -->\n" + strings.Replace(small, "<MainRoot>", "<MainRoot><!-- a - b -->\n<?pi x?>", 1) + "<!--after-->\n", "MyDataSourceName", 25},
		"cdata and attributes":  {strings.Replace(small, "<Locality>Redmond</Locality>", "<Locality a='1&amp;' b = \"x>y\"><![CDATA[<Red]]mond>]]]></Locality>", 1), "MyDataSourceName", 25},
		"self-closing fields":   {strings.Replace(small, "<Phone>303-555-0188</Phone>", "<Phone/><Open ></Open >", 1), "MyDataSourceName", 25},
		"prefixed entities":     {strings.ReplaceAll(small, datasettest.EntityType+">", "p:"+datasettest.EntityType+">"), "MyDataSourceName", 25},
		"character references":  {strings.Replace(small, ">Redmond<", ">R&#233;&#xE9;&lt;&gt;&quot;&apos;<", 1), "MyDataSourceName", 25},
		"non-ASCII text":        {strings.ReplaceAll(small, ">Redmond<", ">Løven 東京 🗺<"), "MyDataSourceName", 25},
		"arbitrary root name":   {strings.ReplaceAll(small, "MainRoot>", "MyDataSourceNameData>"), "MyDataSourceName", 25},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, want, err := referenceCount([]byte(tc.doc))
			if err != nil || want != tc.entities {
				t.Fatalf("reference reads %d entities, %v; test says %d", want, err, tc.entities)
			}
			for _, chunk := range []int{1, 2, 3, 7, 64, 4096, len(tc.doc)} {
				sum, err := verifyChunks([]byte(tc.doc), tc.name, chunk)
				if err != nil {
					t.Fatalf("chunk %d: %v", chunk, err)
				}
				if sum.Entities != tc.entities || sum.Bytes != int64(len(tc.doc)) {
					t.Errorf("chunk %d: %d entities in %d bytes, want %d in %d", chunk, sum.Entities, sum.Bytes, tc.entities, len(tc.doc))
				}
			}
		})
	}
}

func TestVerifierRejects(t *testing.T) {
	good := datasettest.Export{Name: "DS", Entities: 3}.String()
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("test export has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	manyColumns := replace(`<xs:element name="Notes" type="xs:string" minOccurs="0"/>`,
		func() string {
			var b strings.Builder
			for i := range MaxColumns {
				fmt.Fprintf(&b, `<xs:element name="C%d" type="xs:string"/>`, i)
			}
			return b.String()
		}())
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
		"wrong entity element":  {replace("  <"+datasettest.EntityType+">", "  <Other>"), `<Other> element where <MyDataSourceEntityType>`},
		"mismatched end tag":    {replace("</Locality>", "</Locale>"), "closes <Locality>"},
		"unclosed":              {strings.TrimSuffix(good, datasettest.Footer), "ends inside element <MainRoot>"},
		"cut in tag":            {good[:len(good)-5], "ends inside a tag"},
		"cut in reference":      {good[:strings.Index(good, "&amp;")+3], "ends inside an entity reference"},
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
		"schema without choice": {strings.NewReplacer(`<xs:choice minOccurs="0" maxOccurs="unbounded">`, `<xs:all>`, `</xs:choice>`, `</xs:all>`).Replace(good), "no entity type"},
		"too deep":              {"<a><xs:schema>" + strings.Repeat("<b>", maxDepth) + "", "nested more than"},
		"long name":             {"<" + strings.Repeat("n", maxNameBytes+1) + ">", "longer than"},
		"schema too large":      {"<a><xs:schema>" + strings.Repeat("<!-- padding -->", maxSchemaBytes/16+1), "no complete xs:schema"},
		"PI without target":     {replace("<Locality>", "<Locality><? x?>"), "'<?' is followed by"},
		"bare ampersand":        {replace("Way &amp; Main", "Way & Main"), "bare '&'"},
		"undefined entity":      {replace("&amp;", "&nbsp;"), "undefined entity reference &nbsp;"},
		"bad character ref":     {replace("&amp;", "&#0;"), "undefined entity reference"},
		"ampersand in attr":     {replace(`id="DS"`, `id="D&S"`), "bare '&'"},
		"invalid UTF-8":         {replace(">Redmond<", ">Red\xffmond<"), "not valid UTF-8"},
		"overlong UTF-8":        {replace(">Redmond<", ">Red\xc0\xafmond<"), "not valid UTF-8"},
		"truncated character":   {replace(">Redmond<", ">Redmond\xe6\x9d<"), "not valid UTF-8"},
		"control character":     {replace(">Redmond<", ">Red\x01mond<"), "control character"},
		"wrong data source":     {strings.ReplaceAll(good, `"DS"`, `"Other"`), `data source "Other", not "DS"`},
		"too many columns":      {manyColumns, "more than 352 columns"},
		"unknown column type":   {replace(`name="Open" type="xs:long"`, `name="Open" type="xs:int"`), `type "int"`},
		"bad column name":       {replace(`name="Open"`, `name="Op-en"`), "not an SDS column name"},
		"bad key":               {replace(`<xs:field xpath="EntityID"/>`, `<xs:field xpath="Nope"/>`), `key "Nope"`},
		"bad entity type name":  {strings.ReplaceAll(good, datasettest.EntityType, "Bad.Name"), "not an SDS entity type name"},
		"two entity types": {replace(`        </xs:choice>`, `<xs:element name="Second"><xs:complexType><xs:sequence>
			<xs:element name="A" type="xs:string"/></xs:sequence></xs:complexType></xs:element></xs:choice>`), "2 entity types"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			chunks := []int{1, 5, 4096}
			if len(tc.doc) > 64<<10 {
				chunks = chunks[1:] // byte by byte adds nothing but time
			}
			for _, chunk := range chunks {
				_, err := verifyChunks([]byte(tc.doc), "DS", chunk)
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

// TestVerifierEntityLimit: one entity beyond the SDS limit is refused.
func TestVerifierEntityLimit(t *testing.T) {
	header := strings.SplitAfter(datasettest.Export{Name: "DS"}.String(), "</xs:schema>")[0]
	for _, n := range []int{MaxEntities, MaxEntities + 1} {
		doc := header + strings.Repeat("<"+datasettest.EntityType+"/>", n) + datasettest.Footer
		sum, err := Verify(strings.NewReader(doc), "DS")
		if n <= MaxEntities && (err != nil || sum.Entities != int64(n)) {
			t.Errorf("%d entities: %d, %v", n, sum.Entities, err)
		}
		if n > MaxEntities && (err == nil || !strings.Contains(err.Error(), "more than 200000 entities")) {
			t.Errorf("%d entities: accepted or wrong error: %v", n, err)
		}
	}
}

// TestVerifierRejectsEveryPrefix: wherever an export is cut before its end
// tag, the cut is detected; this catches a body shorter than announced.
func TestVerifierRejectsEveryPrefix(t *testing.T) {
	doc := []byte(strings.Replace(datasettest.Export{Name: "DS", Entities: 2}.String(), ">Redmond<", ">Løven<", 1))
	end := bytes.LastIndex(doc, []byte("</MainRoot>")) + len("</MainRoot>")
	for cut := 0; cut < end; cut++ {
		if _, err := verifyChunks(doc[:cut], "DS", 1<<20); err == nil {
			t.Fatalf("prefix of %d bytes accepted: ...%q", cut, doc[max(0, cut-20):cut])
		}
	}
	if _, err := verifyChunks(doc[:end], "DS", 1<<20); err != nil {
		t.Fatalf("document without its final newline rejected: %v", err)
	}
}

// TestVerifierRandomChunks: the verdict does not depend on how the stream
// is split, even inside multi-byte characters and references.
func TestVerifierRandomChunks(t *testing.T) {
	doc := []byte(strings.ReplaceAll(datasettest.Export{Name: "DS", Entities: 200, Padding: 10}.String(), ">Redmond<", ">Løven 東京 🗺 &#x1F5FA;<"))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		v := NewVerifier("DS")
		rest := doc
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(300))
			if _, err := v.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := v.Close(); err != nil || v.Summary().Entities != 200 {
			t.Fatalf("entities %d, err %v", v.Summary().Entities, err)
		}
	}
}

// scannerGaps are the reference parser's objections the scanner does not
// share: what comments hold, "]]>" in text, the noncharacters U+FFFE/U+FFFF,
// and namespace prefixes nobody declared.
var scannerGaps = []string{
	"not allowed in comments",
	"unescaped ]]>",
	"illegal character code U+FFF",
	"unbound",
}

// FuzzVerifier: whatever the Verifier accepts, encoding/xml reads as a
// DataSet with the same name and number of entities; and the Reader,
// which shares the scanner, agrees with the Verifier unless it objects to
// an entity's fields, which only it reads.
func FuzzVerifier(f *testing.F) {
	good := datasettest.Export{Name: "DS", Entities: 2}.String()
	f.Add([]byte(good))
	f.Add([]byte(readFile(f, "get-downloaded-data-2.xml")))
	f.Add([]byte(readFile(f, "load-data-source-data-schema-and-sample-input-3.xml")))
	for _, seed := range []string{
		strings.Replace(good, "<Locality>Redmond", "<Locality a='1'><![CDATA[x]]><!--c--><?p?>Redmond&#233;", 1),
		strings.Replace(good, "<Phone>303-555-0188</Phone>", "<Phone/>", 1),
		"\xEF\xBB\xBF" + good,
		"<a><xs:schema id='DS'><xs:choice><xs:element name='E'><xs:sequence><xs:element name='A' type='xs:string'/></xs:sequence></xs:element></xs:choice></xs:schema><E/><p:E></p:E></a>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		sum, err := verifyChunks(doc, "", 13)
		n, rerr := readAll(bytes.NewReader(doc), "")
		if (err == nil) != (rerr == nil) && !(err == nil && isFieldError(rerr)) {
			t.Fatalf("Verifier says %v, Reader says %v", err, rerr)
		}
		if err != nil {
			return
		}
		if rerr == nil && n != sum.Entities {
			t.Fatalf("Verifier counts %d entities, Reader %d", sum.Entities, n)
		}
		name, typ, want, xerr := referenceCount(doc)
		if xerr != nil {
			for _, gap := range scannerGaps {
				if strings.Contains(xerr.Error(), gap) {
					return
				}
			}
			t.Fatalf("Verifier accepted (%d entities) what encoding/xml rejects: %v", sum.Entities, xerr)
		}
		if want != sum.Entities || name != sum.Schema.DataSetName || typ != sum.Schema.EntityType {
			t.Fatalf("Verifier reads %d %s of %s, encoding/xml %d %s of %s",
				sum.Entities, sum.Schema.EntityType, sum.Schema.DataSetName, want, typ, name)
		}
	})
}

func isFieldError(err error) bool {
	for _, s := range []string{"not a column of", "has two <", "holds an element"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

func readAll(r io.Reader, name string) (int64, error) {
	rd := NewReader(r, name)
	var n int64
	for {
		_, err := rd.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// benchmarkExports are about 32 MB each: entities padded like large real
// records, and plain ones (all markup, the scanner's worst case). They are
// the exports of the archive package's BenchmarkDataSetChecker.
var benchmarkExports = []struct {
	name string
	data datasettest.Export
}{
	{"padded", datasettest.Export{Name: "DS", Entities: 40_000, Padding: 400}},
	{"plain", datasettest.Export{Name: "DS", Entities: 60_000}},
}

// BenchmarkVerifier measures verification and counting, fed as an
// archive copy feeds it: in writes of 32 KiB.
func BenchmarkVerifier(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(e.data.Size())
			defer reportCPU(b, cputime.Used(), e.data.Size())
			for b.Loop() {
				v := NewVerifier("DS")
				if _, err := e.data.WriteTo(v); err != nil {
					b.Fatal(err)
				}
				if err := v.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU reports MB per CPU-second since start: on a machine shared
// with others, wall time measures the neighbours as much as the code.
func reportCPU(b *testing.B, start time.Duration, size int64) {
	if cpu := cputime.Used() - start; cpu > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

// BenchmarkVerify measures verification alone, from memory.
func BenchmarkVerify(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			doc := []byte(e.data.String())
			b.SetBytes(int64(len(doc)))
			defer reportCPU(b, cputime.Used(), int64(len(doc)))
			for b.Loop() {
				if _, err := Verify(bytes.NewReader(doc), "DS"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReader measures typed records from memory: every value of
// every entity decoded.
func BenchmarkReader(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			doc := []byte(e.data.String())
			b.SetBytes(int64(len(doc)))
			defer reportCPU(b, cputime.Used(), int64(len(doc)))
			for b.Loop() {
				if err := ReadTyped(bytes.NewReader(doc)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// ReadTyped reads every record of an export and parses every value by
// its type, as a conversion does.
func ReadTyped(r io.Reader) error {
	rd := NewReader(r, "")
	s, err := rd.Schema()
	if err != nil {
		return err
	}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for i, c := range s.Columns {
			v := rec.Value(i)
			if !v.Present {
				continue
			}
			switch c.Type {
			case Long:
				_, err = v.Long()
			case Double:
				_, err = v.Double()
			case Boolean:
				_, err = v.Bool()
			case DateTime:
				_, err = v.Time()
			}
			if err != nil {
				return err
			}
		}
	}
}
