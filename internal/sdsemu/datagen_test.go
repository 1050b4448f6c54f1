package sdsemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestDatasetSizeMatchesOutput(t *testing.T) {
	for _, d := range []Dataset{
		{AccessID: "a1", Name: "Empty", EntityTypeName: "E", VersionJobID: "v1"},
		{AccessID: "a1", Name: "One", EntityTypeName: "E", VersionJobID: "v1", EntityCount: 1},
		{AccessID: "a1", Name: "Some", EntityTypeName: "Shop", VersionJobID: "v2", EntityCount: 257},
		{AccessID: "a1", Name: "Padded", EntityTypeName: "Shop", VersionJobID: "v2", EntityCount: 70, PaddingBytes: 1},
		{AccessID: "a1", Name: "Padded", EntityTypeName: "Shop", VersionJobID: "v2", EntityCount: 70, PaddingBytes: 333},
	} {
		var buf bytes.Buffer
		n, err := d.WriteTo(&buf)
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("%s: WriteTo = %d, %v for %d bytes", d.Name, n, err, buf.Len())
		}
		if size := d.Size(); size != n {
			t.Errorf("%s/%d/%d: Size %d, written %d", d.Name, d.EntityCount, d.PaddingBytes, size, n)
		}
		root := parseXML(t, buf.Bytes())
		if len(root.all(d.EntityTypeName)) != d.EntityCount {
			t.Errorf("%s: %d entities, want %d", d.Name, len(root.all(d.EntityTypeName)), d.EntityCount)
		}
	}
}

func TestDatasetMatchesDocExample(t *testing.T) {
	example := parseXML(t, readExample(t, "get-downloaded-data-2.xml"))
	d := Dataset{AccessID: "a1", Name: "MyDataSourceName", EntityTypeName: "MyDataSourceEntityType", VersionJobID: "v", EntityCount: 3}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got := parseXML(t, buf.Bytes())
	assertShape(t, "schema", got.child("xs:schema").shape(), example.child("xs:schema").shape())
	assertShape(t, "entity", got.all(d.EntityTypeName)[0].shape(), example.all(d.EntityTypeName)[0].shape())
	if got.child("xs:schema").attr("id") != d.Name || !strings.HasPrefix(buf.String(), `<?xml version="1.0" encoding="UTF-8" ?>`+"\n<MainRoot>\n") {
		t.Errorf("document head: %.200s", buf.String())
	}

	// A namespace-aware, strict decoder reads it into typed values.
	type entity struct {
		EntityID               string
		Latitude, Longitude    float64
		AddressLine, Locality  string
		AdminDistrict          string
		CountryRegion          string
		PostalCode, Confidence string
		Phone                  string
		Open, Close            int64
		IsWheelchairAccessible bool
	}
	var doc struct {
		Entities []entity `xml:"MyDataSourceEntityType"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for i, e := range doc.Entities {
		if e.EntityID != strconv.Itoa(i+1) || e.Latitude < 20 || e.Latitude > 62 || e.Longitude > -70 || e.Longitude < -158 ||
			e.Locality == "" || len(e.PostalCode) != 5 || len(e.Phone) != 12 || e.Open >= e.Close || e.CountryRegion != "United States" {
			t.Errorf("entity %d: %+v", i, e)
		}
	}
}

func TestDatasetPadding(t *testing.T) {
	d := Dataset{AccessID: "a1", Name: "P", EntityTypeName: "E", VersionJobID: "v", EntityCount: 5, PaddingBytes: 100}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	root := parseXML(t, buf.Bytes())
	if !strings.Contains(buf.String(), `<xs:element name="Notes" type="xs:string" minOccurs="0"/>`) {
		t.Error("Notes field missing from the schema")
	}
	for _, e := range root.all("E") {
		if n := len(e.child("Notes").text); n != 100 {
			t.Errorf("Notes is %d bytes, want 100", n)
		}
	}
	d.PaddingBytes = 0
	buf.Reset()
	_, _ = d.WriteTo(&buf)
	if strings.Contains(buf.String(), "Notes") {
		t.Error("Notes present without padding")
	}
}

func TestDatasetIsDeterministic(t *testing.T) {
	d := Dataset{AccessID: "20181f26d9e94c81acdf9496133d4f23", Name: "FourthCoffeeSample", EntityTypeName: "FourthCoffeeShops", VersionJobID: "v1", EntityCount: 500}
	sum := func(d Dataset) [32]byte {
		h := sha256.New()
		if _, err := d.WriteTo(h); err != nil {
			t.Fatal(err)
		}
		return [32]byte(h.Sum(nil))
	}
	first := sum(d)
	if sum(d) != first {
		t.Error("same dataset, different bytes")
	}
	// Access and version IDs are case-insensitive, like the service's.
	upper := d
	upper.AccessID, upper.VersionJobID = strings.ToUpper(d.AccessID), strings.ToUpper(d.VersionJobID)
	if sum(upper) != first {
		t.Error("the case of an ID changed the data")
	}
	other := d
	other.VersionJobID = "v2"
	if sum(other) == first {
		t.Error("another version generated the same data")
	}
}

func TestDownloadsAreIdentical(t *testing.T) {
	download := func(e *env, extra ...string) []byte {
		t.Helper()
		res := e.createDownload(fcAccess, fcName, fcMaster, extra...)
		if err := e.emu.CompleteJob(res.get("id").str()); err != nil {
			t.Fatal(err)
		}
		r := e.get(e.localPath(linkURL(t, res, "self", "")) + "/output/succeeded?key=" + fcMaster)
		mustStatus(t, r, http.StatusOK)
		return r.body
	}
	e1, e2 := newEnv(t, nil), newEnv(t, nil)
	a, b, c := download(e1), download(e1), download(e2)
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Error("downloads of the same version differ")
	}
	if bytes.Equal(a, download(e1, "jobId="+fcStaged)) {
		t.Error("the staged version downloads the published data")
	}
}

// elementCounter counts occurrences of a start tag in a stream, across write boundaries.
type elementCounter struct {
	tag   []byte
	tail  []byte
	count int
	n     int64
}

func (c *elementCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	k := len(c.tag) - 1
	// A tag split across writes lies within the previous tail and the next k bytes; neither part
	// alone is long enough to hold one, so nothing is counted twice.
	c.count += bytes.Count(append(c.tail, p[:min(len(p), k)]...), c.tag)
	c.count += bytes.Count(p, c.tag)
	joined := append(c.tail, p[max(0, len(p)-k):]...)
	c.tail = append(c.tail[:0:0], joined[max(0, len(joined)-k):]...)
	return len(p), nil
}

// TestLargeDownload streams the benchmark fixture (200,000 entities, about 300 MB) through HTTP.
func TestLargeDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 300 MB")
	}
	cfg, err := LoadFixture(filepath.Join("testdata", "large.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Manual = true
	emu, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, emu: emu, srv: newServer(t, emu)}
	const key = "sdsemu-master-key-large"
	res := e.createDownload("b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8", "LargeSample", key)
	if err := emu.CompleteJob(res.get("id").str()); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := e.srv.Client().Get(linkURL(t, res, "self", "") + "/output/succeeded?key=" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	counter := &elementCounter{tag: []byte("<LargeSampleEntities>")}
	if _, err := io.CopyBuffer(counter, resp.Body, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if resp.ContentLength != counter.n || counter.count != MaxEntities {
		t.Errorf("Content-Length %d, read %d bytes, %d entities", resp.ContentLength, counter.n, counter.count)
	}
	if counter.n < 290_000_000 || counter.n > 300_000_000 {
		t.Errorf("export is %d bytes, want about 300 MB", counter.n)
	}
	// Streamed, not built: allocations stay far below the body size.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("%d MB allocated to stream %d MB", alloc>>20, counter.n>>20)
	}
}

// TestGenerated200kIsWellFormed parses a 200,000-entity document with an XML decoder.
func TestGenerated200kIsWellFormed(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 100 MB of XML (about 2 s)")
	}
	if raceEnabled {
		t.Skip("the generator's output does not depend on the race detector, which makes this parse take minutes")
	}
	d := Dataset{AccessID: "a1", Name: "Big", EntityTypeName: "BigEntity", VersionJobID: "v", EntityCount: MaxEntities}
	pr, pw := io.Pipe()
	go func() {
		_, err := d.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	cr := &countingReader{r: pr}
	dec := xml.NewDecoder(cr)
	var entities int
	var stack []xml.Name
	for {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name)
			if len(stack) == 2 && tok.Name.Local == "BigEntity" {
				entities++
			}
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1] != tok.Name {
				t.Fatalf("mismatched end element %s", xmlName(tok.Name))
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 || entities != MaxEntities || cr.n != d.Size() {
		t.Errorf("open elements %v, %d entities, %d bytes (Size %d)", stack, entities, cr.n, d.Size())
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestElementCounterAcrossWrites(t *testing.T) {
	d := Dataset{AccessID: "a1", Name: "N", EntityTypeName: "Shop", VersionJobID: "v", EntityCount: 9}
	var buf bytes.Buffer
	_, _ = d.WriteTo(&buf)
	for _, size := range []int{1, 2, 5, 7, 64} {
		c := &elementCounter{tag: []byte("<Shop>")}
		for p := buf.Bytes(); len(p) > 0; p = p[min(size, len(p)):] {
			_, _ = c.Write(p[:min(size, len(p))])
		}
		if c.count != 9 {
			t.Errorf("writes of %d bytes: counted %d", size, c.count)
		}
	}
}
