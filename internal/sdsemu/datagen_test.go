package sdsemu

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/dataset"
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
		sum, err := dataset.Verify(&buf, d.Name)
		if err != nil || sum.Entities != int64(d.EntityCount) || sum.Schema.EntityType != d.EntityTypeName {
			t.Errorf("%s: %d entities of %v, %v; want %d", d.Name, sum.Entities, sum.Schema, err, d.EntityCount)
		}
	}
}

// readEntities reads an export with package dataset: its schema and, per
// entity, the present columns' values.
func readEntities(t *testing.T, doc []byte, name string) (*dataset.Schema, []map[string]dataset.Value) {
	t.Helper()
	r := dataset.NewReader(bytes.NewReader(doc), name)
	var out []map[string]dataset.Value
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]dataset.Value{}
		for i, c := range rec.Schema().Columns {
			if v := rec.Value(i); v.Present {
				v.Raw = bytes.Clone(v.Raw) // the record is reused
				m[c.Name] = v
			}
		}
		out = append(out, m)
	}
	s, err := r.Schema()
	if err != nil {
		t.Fatal(err)
	}
	return s, out
}

func TestDatasetMatchesDocExample(t *testing.T) {
	wantSchema, wantEntities := readEntities(t, readExample(t, "get-downloaded-data-2.xml"), "MyDataSourceName")
	d := Dataset{AccessID: "a1", Name: "MyDataSourceName", EntityTypeName: "MyDataSourceEntityType", VersionJobID: "v", EntityCount: 3}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	schema, entities := readEntities(t, buf.Bytes(), d.Name)
	if !reflect.DeepEqual(schema.Columns, wantSchema.Columns) || schema.EntityType != wantSchema.EntityType || schema.Key != wantSchema.Key {
		t.Errorf("schema %+v, want the example's %+v", schema, wantSchema)
	}
	if len(entities) != d.EntityCount || len(entities[0]) != len(wantEntities[0]) {
		t.Fatalf("%d entities, the first with %d values; want %d, with %d as in the example", len(entities), len(entities[0]), d.EntityCount, len(wantEntities[0]))
	}
	if schema.DataSetName != d.Name || !strings.HasPrefix(buf.String(), `<?xml version="1.0" encoding="UTF-8" ?>`+"\n<MainRoot>\n") {
		t.Errorf("document head: %.200s", buf.String())
	}

	// Every value reads as its column's type.
	for i, e := range entities {
		lat, err1 := e["Latitude"].Double()
		lon, err2 := e["Longitude"].Double()
		open, err3 := e["Open"].Long()
		closing, err4 := e["Close"].Long()
		_, err5 := e["IsWheelchairAccessible"].Bool()
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Errorf("entity %d: %v", i, err)
		}
		if e["EntityID"].Text() != strconv.Itoa(i+1) || lat < 20 || lat > 62 || lon > -70 || lon < -158 ||
			e["Locality"].Text() == "" || len(e["PostalCode"].Raw) != 5 || len(e["Phone"].Raw) != 12 || open >= closing || e["CountryRegion"].Text() != "United States" {
			t.Errorf("entity %d: %v", i, e)
		}
	}
}

func TestDatasetPadding(t *testing.T) {
	d := Dataset{AccessID: "a1", Name: "P", EntityTypeName: "E", VersionJobID: "v", EntityCount: 5, PaddingBytes: 100}
	var buf bytes.Buffer
	if _, err := d.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `<xs:element name="Notes" type="xs:string" minOccurs="0"/>`) {
		t.Error("Notes field missing from the schema")
	}
	_, entities := readEntities(t, buf.Bytes(), d.Name)
	for _, e := range entities {
		if n := len(e["Notes"].Raw); n != 100 {
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
		t.Skip("the generator's output does not depend on the race detector, which makes this parse take minutes: make test runs it again without -race")
	}
	d := Dataset{AccessID: "a1", Name: "Big", EntityTypeName: "BigEntity", VersionJobID: "v", EntityCount: MaxEntities}
	pr, pw := io.Pipe()
	go func() {
		_, err := d.WriteTo(pw)
		pw.CloseWithError(err)
	}()
	cr := &countingReader{r: pr}
	sum, err := dataset.Verify(cr, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entities != MaxEntities || sum.Schema.EntityType != "BigEntity" || cr.n != d.Size() {
		t.Errorf("%d entities of %s, %d bytes (Size %d)", sum.Entities, sum.Schema.EntityType, cr.n, d.Size())
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
