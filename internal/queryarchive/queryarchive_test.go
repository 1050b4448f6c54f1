package queryarchive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/query/querytest"
	"github.com/sdsops/sdsops/internal/queryapi"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ds = catalog.ID{AccessID: querytest.AccessID, Name: querytest.Name}

type fixture struct {
	api    *s3.Client
	bucket string
	store  *catalog.Store
	cat    *Catalog
	now    time.Time
	mu     sync.Mutex
	// finished is the FinishedAt of the last archive's manifest: each
	// archive finishes a minute after the one before.
	finished time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	api := testenv.S3(t)
	f := &fixture{api: api, bucket: testenv.Bucket(t, api), now: time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC), finished: time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)}
	f.store = catalog.New(api, f.bucket, "")
	f.cat = &Catalog{Records: f.store, Objects: api, Bucket: f.bucket, Recheck: time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: f.clock}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// archive puts an export and its manifest in the bucket, as a backup
// does, and records the data source in the catalog; with a version, as
// its verified version (a nightly backup), else only its visibility (a
// backup on request). sum "" is the export's own sha256.
func (f *fixture) archive(t *testing.T, job, version, export, sum string, verified bool, visibility string) {
	t.Helper()
	f.archiveOn(t, "2026/12/06", job, version, export, sum, verified, visibility)
}

// archiveOn is archive for a job of another day.
func (f *fixture) archiveOn(t *testing.T, date, job, version, export, sum string, verified bool, visibility string) {
	t.Helper()
	f.putArchive(t, ds, date, job, version, export, sum, verified, visibility, false)
}

// archiveStaged puts a verified archive of the staged version whose job
// id is version, as a backup with isStaging does: the catalog's record
// does not change.
func (f *fixture) archiveStaged(t *testing.T, job, version, export string) {
	t.Helper()
	f.putArchive(t, ds, "2026/12/06", job, version, export, "", true, "", true)
}

func (f *fixture) key(date, job string) string { return f.keyOf(ds, date, job) }

func (f *fixture) keyOf(id catalog.ID, date, job string) string {
	return "sds-exports/" + id.AccessID + "/" + id.Name + "/" + date + "/" + job + ".xml"
}

// archiveAs is archiveOn for another data source.
func (f *fixture) archiveAs(t *testing.T, id catalog.ID, date, job, version, export, sum string, verified bool, visibility string) {
	t.Helper()
	f.putArchive(t, id, date, job, version, export, sum, verified, visibility, false)
}

func (f *fixture) putArchive(t *testing.T, id catalog.ID, date, job, version, export, sum string, verified bool, visibility string, staging bool) {
	t.Helper()
	ctx := context.Background()
	key := f.keyOf(id, date, job)
	f.finished = f.finished.Add(time.Minute)
	if sum == "" {
		h := sha256.Sum256([]byte(export))
		sum = hex.EncodeToString(h[:])
	}
	manifest, _ := json.Marshal(archive.Manifest{FormatVersion: 1, AccessID: id.AccessID, DataSourceName: id.Name, JobID: job,
		VersionJobID: version, Staging: staging,
		SHA256: sum, Verified: verified, Bucket: f.bucket, Key: key, Bytes: int64(len(export)), FinishedAt: f.finished,
		EntityCount: int64(strings.Count(export, "<EntityID>"))})
	for k, body := range map[string]string{key: export, key + ".manifest.json": string(manifest)} {
		if _, err := f.api.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: aws.String(k), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	if staging {
		return
	}
	if _, err := f.store.Update(ctx, id, func(r *catalog.Record) error {
		if version != "" {
			r.Verified(catalog.Archive{Version: version, At: f.now, ArchiveKey: key, SHA256: sum, EntityCount: 22})
		}
		r.Visibility = visibility
		return nil
	}); err != nil && !errors.Is(err, catalog.ErrIndexNotUpdated) {
		t.Fatal(err)
	}
}

func name22067(t *testing.T, src *queryapi.Source) string {
	t.Helper()
	i, ok := src.Published.Lookup("-22067")
	if !ok {
		t.Fatal("-22067 not served")
	}
	return src.Published.Value(i, src.Published.Column("Name")).Str
}

func TestServesNewestVerifiedArchive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.cat.Source(ctx, ds.AccessID, ds.Name); !errors.Is(err, queryapi.ErrNoSource) {
		t.Fatalf("before any archive: %v, want ErrNoSource", err)
	}
	f.archive(t, "job1", "", querytest.CoffeeShops(), "", true, catalog.Private) // on request: no version
	src, err := f.cat.Source(ctx, ds.AccessID, strings.ToLower(ds.Name))
	if err != nil {
		t.Fatal(err)
	}
	if src.Public || name22067(t, src) != "Fourth Coffee Store #22067" {
		t.Errorf("served %+v", src)
	}
	// A newer verified archive is served once the catalog is read again.
	f.archive(t, "job2", "v2", strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", "Renamed<", 1), "", true, catalog.Public)
	if src, _ = f.cat.Source(ctx, ds.AccessID, ds.Name); name22067(t, src) != "Fourth Coffee Store #22067" {
		t.Error("the catalog was read again before Recheck")
	}
	f.advance(2 * time.Minute)
	if src, err = f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || name22067(t, src) != "Renamed" || !src.Public {
		t.Errorf("after the recheck: %v, public %v", err, src.Public)
	}
	// An older archive whose manifest is rewritten later (a conversion on
	// request) does not become the newest.
	f.archiveOn(t, "2026/11/30", "job0", "", strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", "Older<", 1), "", true, catalog.Public)
	f.advance(2 * time.Minute)
	if src, err = f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || name22067(t, src) != "Renamed" {
		t.Errorf("an archive of an earlier day was served: %v", err)
	}
	// A newer archive that failed verification is not served.
	f.archive(t, "job3", "", strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", "Unverified<", 1), "", false, catalog.Public)
	f.advance(2 * time.Minute)
	if src, err = f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || name22067(t, src) != "Renamed" {
		t.Errorf("an unverified archive was served: %v", err)
	}
}

// An archive whose bytes differ from the verified sha256 is never served:
// the version before it stays, and without one the data source is not
// answered.
func TestTamperedArchiveIsNotServed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.archive(t, "job1", "v1", querytest.CoffeeShops(), strings.Repeat("0", 64), true, catalog.Private)
	if _, err := f.cat.Source(ctx, ds.AccessID, ds.Name); !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered first archive: %v, want ErrTampered", err)
	}
	f.archive(t, "job2", "v2", querytest.CoffeeShops(), "", true, catalog.Private)
	src, err := f.cat.Source(ctx, ds.AccessID, ds.Name)
	if err != nil {
		t.Fatal(err)
	}
	f.archive(t, "job3", "v3", strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", "Tampered<", 1), strings.Repeat("1", 64), true, catalog.Private)
	f.advance(2 * time.Minute)
	again, err := f.cat.Source(ctx, ds.AccessID, ds.Name)
	if err != nil || again.Published != src.Published || name22067(t, again) != "Fourth Coffee Store #22067" {
		t.Errorf("after a tampered archive: %v; the verified version should stay", err)
	}
}

// A staged version's archive answers isStaging=true and never the
// published queries; once a newer published archive of that version is
// there, the staged one is no longer served.
func TestStagedVersion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	renamed := func(to string) string {
		return strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", to+"<", 1)
	}
	staged22067 := func(src *queryapi.Source) string {
		t.Helper()
		if src.Staged == nil {
			return "(none)"
		}
		return name22067(t, &queryapi.Source{Published: src.Staged})
	}
	f.archive(t, "job1", "v1", querytest.CoffeeShops(), "", true, catalog.Private)
	src, err := f.cat.Source(ctx, ds.AccessID, ds.Name)
	if err != nil || src.Staged != nil {
		t.Fatalf("no staged archive: %v, staged %v", err, src.Staged)
	}
	f.archiveStaged(t, "job2", "v2", renamed("Staged"))
	f.advance(2 * time.Minute)
	if src, err = f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || name22067(t, src) != "Fourth Coffee Store #22067" || staged22067(src) != "Staged" {
		t.Fatalf("with a staged archive: %v; published %q, staged %q", err, name22067(t, src), staged22067(src))
	}
	// Backups of both versions again: the published one changes, the
	// staged one, newer still and with the same bytes, stays as loaded.
	before := src.Staged
	f.archive(t, "job3", "v1", renamed("Published again"), "", true, catalog.Private)
	f.archiveStaged(t, "job4", "v2", renamed("Staged"))
	f.advance(2 * time.Minute)
	if src, err = f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || name22067(t, src) != "Published again" || staged22067(src) != "Staged" {
		t.Fatalf("published and staged backed up again: %v; published %q, staged %q", err, name22067(t, src), staged22067(src))
	}
	if src.Staged != before {
		t.Error("the same staged bytes were loaded again")
	}
	// The staged version is published and backed up: it is no longer staged.
	f.archive(t, "job5", "v2", renamed("Staged"), "", true, catalog.Private)
	f.advance(2 * time.Minute)
	if src, err = f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || name22067(t, src) != "Staged" || src.Staged != nil {
		t.Errorf("after the staged version was published: %v; published %q, staged %q", err, name22067(t, src), staged22067(src))
	}
}

func TestUnknownAndMalformed(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"NoSuchSource", "bad name", strings.Repeat("x", 300)} {
		if _, err := f.cat.Source(context.Background(), ds.AccessID, name); !errors.Is(err, queryapi.ErrNoSource) {
			t.Errorf("%q: %v, want ErrNoSource", name, err)
		}
	}
}

// Through the handler: back up, query, back up a changed version, see
// the answer change, with no request failing during the switch.
func TestSwitchThroughHandler(t *testing.T) {
	f := newFixture(t)
	f.archive(t, "job1", "v1", querytest.CoffeeShops(), "", true, catalog.Private)
	h := &queryapi.Handler{Catalog: f.cat, AccountKeys: [][32]byte{queryapi.HashKey("k")}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := srv.URL + "/REST/v1/data/" + ds.AccessID + "/" + ds.Name + "/" + querytest.EntityType + "('-22067')?$select=Name&$format=json&key=k"
	get := func() string { // t.Error, not t.Fatal: it also runs in goroutines
		resp, err := http.Get(url)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Errorf("a request failed during the switch: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if !strings.Contains(get(), `"Name":"Fourth Coffee Store #22067"`) {
		t.Fatal("first version not served")
	}
	f.archive(t, "job2", "v2", strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", "Renamed<", 1), "", true, catalog.Private)
	f.advance(2 * time.Minute)
	var wg sync.WaitGroup
	bodies := make([]string, 8)
	for i := range bodies {
		wg.Add(1)
		go func() { defer wg.Done(); bodies[i] = get() }()
	}
	wg.Wait()
	if !strings.Contains(get(), `"Name":"Renamed"`) {
		t.Error("the new version is not served")
	}
	for _, b := range bodies {
		if !strings.Contains(b, `"Name":"Renamed"`) && !strings.Contains(b, `"Name":"Fourth Coffee Store #22067"`) {
			t.Errorf("answer of neither version: %s", b)
		}
	}
}

// failingRecords fails every read once switched on.
type failingRecords struct {
	Records
	fail bool
}

func (f *failingRecords) Get(ctx context.Context, id catalog.ID) (catalog.Record, error) {
	if f.fail {
		return catalog.Record{}, errors.New("S3 is unreachable")
	}
	return f.Records.Get(ctx, id)
}

// When the catalog cannot be read, the served version stays; with none
// served yet, the error reaches the handler (a 503).
func TestCatalogUnreadable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	recs := &failingRecords{Records: f.store}
	f.cat.Records = recs
	f.archive(t, "job1", "v1", querytest.CoffeeShops(), "", true, catalog.Private)
	src, err := f.cat.Source(ctx, ds.AccessID, ds.Name)
	if err != nil {
		t.Fatal(err)
	}
	recs.fail = true
	f.advance(2 * time.Minute)
	if again, err := f.cat.Source(ctx, ds.AccessID, ds.Name); err != nil || again.Published != src.Published {
		t.Errorf("catalog unreadable: %v; the served version should stay", err)
	}
	other := &Catalog{Records: recs, Objects: f.api, Bucket: f.bucket, Log: f.cat.Log}
	if _, err := other.Source(ctx, ds.AccessID, ds.Name); err == nil || errors.Is(err, queryapi.ErrNoSource) {
		t.Errorf("nothing served and the catalog unreadable: %v, want a server error", err)
	}
}

// convert converts an archive of the fixture as the conversion pass does,
// writing its GeoParquet and recording it in the manifest.
func (f *fixture) convert(t *testing.T, job string) conversion.Record {
	t.Helper()
	store, err := archive.New(f.api, archive.Config{Bucket: f.bucket})
	if err != nil {
		t.Fatal(err)
	}
	res, err := conversion.New(f.api, store).Convert(context.Background(), f.key("2026/12/06", job)+archive.ManifestSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if res.Record.GeoParquet == nil {
		t.Fatal("no GeoParquet recorded")
	}
	return res.Record
}

func (f *fixture) put(t testing.TB, key, body string) {
	t.Helper()
	if _, err := f.api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &f.bucket, Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// logged collects the fixture's log; read it once Source has returned.
func (f *fixture) logged() *strings.Builder {
	var sb strings.Builder
	f.cat.Log = slog.New(slog.NewTextHandler(&sb, nil))
	return &sb
}

// The GeoParquet recorded for an archive is what is loaded: an archive
// whose XML is then replaced (which only a test does: the XML is never
// rewritten) answers from the GeoParquet, verified by its own sha256.
func TestLoadsTheRecordedGeoParquet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	export := querytest.CoffeeShops()
	f.archive(t, "job1", "v1", export, "", true, catalog.Private)
	rec := f.convert(t, "job1")
	// Same bytes' sha256 recorded, different contents: only a load from the
	// GeoParquet still finds the original name. The XML's sha256 no longer
	// matches, so a load from it would fail as tampered.
	f.put(t, f.key("2026/12/06", "job1"), strings.Replace(export, "Fourth Coffee Store #22067<", "From the XML<", 1))
	log := f.logged()
	src, err := f.cat.Source(ctx, ds.AccessID, ds.Name)
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, log)
	}
	if name22067(t, src) != "Fourth Coffee Store #22067" || int64(src.Published.Len()) != rec.GeoParquet.Rows {
		t.Errorf("served %q, %d entities", name22067(t, src), src.Published.Len())
	}
	if log.Len() != 0 {
		t.Errorf("log:\n%s", log)
	}
}

// A GeoParquet that is missing, altered or unreadable is not served: the
// XML, verified by its own sha256, is loaded instead and the fault logged.
func TestFallsBackToTheXML(t *testing.T) {
	for name, tc := range map[string]struct {
		spoil func(t *testing.T, f *fixture, rec conversion.Record)
		why   string // in the log
	}{
		"altered GeoParquet": {func(t *testing.T, f *fixture, rec conversion.Record) {
			f.put(t, rec.GeoParquet.Key, "PAR1 not what was recorded PAR1")
		}, ".parquet: " + ErrTampered.Error()},
		"missing GeoParquet": {func(t *testing.T, f *fixture, rec conversion.Record) {
			if _, err := f.api.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &rec.GeoParquet.Key}); err != nil {
				t.Fatal(err)
			}
		}, "NoSuchKey"},
		"GeoParquet made from other bytes": {func(t *testing.T, f *fixture, rec conversion.Record) {
			mkey := f.key("2026/12/06", "job1") + archive.ManifestSuffix
			obj, err := f.api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &f.bucket, Key: &mkey})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Body.Close()
			var m archive.Manifest
			if err := json.NewDecoder(obj.Body).Decode(&m); err != nil {
				t.Fatal(err)
			}
			rec.SourceSHA256 = strings.Repeat("0", 64)
			m.Conversion, _ = json.Marshal(rec)
			b, _ := json.Marshal(m)
			f.put(t, mkey, string(b))
		}, "made from other bytes"},
		"altered schema document": {func(t *testing.T, f *fixture, rec conversion.Record) {
			f.put(t, rec.Schema.Key, `{"entityType":"CoffeeShop","key":"EntityID","columns":[]}`)
		}, ".schema.json: " + ErrTampered.Error()},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.archive(t, "job1", "v1", querytest.CoffeeShops(), "", true, catalog.Private)
			tc.spoil(t, f, f.convert(t, "job1"))
			log := f.logged()
			src, err := f.cat.Source(context.Background(), ds.AccessID, ds.Name)
			if err != nil {
				t.Fatal(err)
			}
			if name22067(t, src) != "Fourth Coffee Store #22067" {
				t.Errorf("served %q", name22067(t, src))
			}
			if !strings.Contains(log.String(), "loading the XML instead of the GeoParquet") || !strings.Contains(log.String(), tc.why) {
				t.Errorf("nothing logged:\n%s", log)
			}
		})
	}
}

// A data source with a geography column is loaded from its XML, which
// keeps the text of every value, invalid WKT included; the GeoParquet
// does not.
func TestGeographyIsLoadedFromTheXML(t *testing.T) {
	f := newFixture(t)
	export := strings.Replace(querytest.Geoms(), "POINT (-111.5 41.5)", "POINT (-111.5 41.5", 1) // invalid WKT
	geo := catalog.ID{AccessID: ds.AccessID, Name: querytest.GeomName}
	f.archiveAs(t, geo, "2026/12/06", "job1", "v1", export, "", true, catalog.Private)
	store, err := archive.New(f.api, archive.Config{Bucket: f.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conversion.New(f.api, store).Convert(context.Background(), f.keyOf(geo, "2026/12/06", "job1")+archive.ManifestSuffix); err != nil {
		t.Fatal(err)
	}
	log := f.logged()
	src, err := f.cat.Source(context.Background(), geo.AccessID, geo.Name)
	if err != nil {
		t.Fatal(err)
	}
	i, ok := src.Published.Lookup("1004000000")
	if !ok {
		t.Fatal("the entity with invalid WKT is not served")
	}
	if v := src.Published.Value(i, src.Published.Column("Geom")); v.Str != "POINT (-111.5 41.5" {
		t.Errorf("its Geom is %+v", v)
	}
	if !strings.Contains(log.String(), "level=INFO") || !strings.Contains(log.String(), "Geom") {
		t.Errorf("log:\n%s", log)
	}
}
