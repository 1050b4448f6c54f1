package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(tb testing.TB, opts ...Option) (*Store, *s3.Client, string) {
	tb.Helper()
	api := testenv.S3(tb)
	name := testenv.Bucket(tb, api)
	return New(api, name, "backups", opts...), api, name
}

var ds = ID{AccessID: "20181f26d9e94c81acdf9496133d4f23", Name: "FourthCoffeeSample"}

const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b4b0b822cd15d6c15b0f00a08"

func rawObject(t *testing.T, api *s3.Client, bucket, key string) (string, string) {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return string(b), aws.ToString(out.ETag)
}

func TestCreateAndReadBack(t *testing.T) {
	clock := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	st, api, bucket := newStore(t, WithClock(func() time.Time { return clock }))
	ctx := context.Background()
	if _, err := st.Get(ctx, ds); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before any write: %v, want ErrNotFound", err)
	}
	rec, err := st.Update(ctx, ds, func(r *Record) error {
		r.Verified(Archive{Version: "9cdf8b21033c474db7274ffe113f1f27", At: clock, ArchiveKey: "archives/x.xml.gz", SHA256: sum, EntityCount: 350})
		r.Visibility = Public
		r.StartJob("0123456789abcdef0123456789abcdef", clock.Add(-time.Minute))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revision != 1 || !rec.FirstSeen.Equal(clock) || !rec.Updated.Equal(clock) {
		t.Errorf("revision %d, first seen %v, updated %v", rec.Revision, rec.FirstSeen, rec.Updated)
	}
	got, err := st.Get(ctx, ID{strings.ToUpper(ds.AccessID), strings.ToLower(ds.Name)})
	if err != nil {
		t.Fatalf("Get in other case: %v", err)
	}
	if got.VerifiedVersion != "9cdf8b21033c474db7274ffe113f1f27" || got.SHA256 != sum || got.EntityCount != 350 || len(got.Jobs) != 1 {
		t.Errorf("read back %+v", got)
	}

	// The stored document is the documented format.
	body, _ := rawObject(t, api, bucket, "backups/catalog/v1/sources/20181f26d9e94c81acdf9496133d4f23/fourthcoffeesample.json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "accessId", "name", "verifiedVersion", "verifiedAt", "archiveKey", "sha256", "entityCount", "visibility", "needsKey", "jobs", "firstSeen", "updated", "revision"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("stored record lacks %q: %s", k, body)
		}
	}
	if doc["schema"] != float64(SchemaVersion) || doc["verifiedAt"] != "2026-11-29T02:00:00Z" {
		t.Errorf("schema %v, verifiedAt %v", doc["schema"], doc["verifiedAt"])
	}
	x, err := st.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.DataSources) != 1 || x.DataSources[0].VerifiedVersion != got.VerifiedVersion || x.DataSources[0].Revision != 1 {
		t.Errorf("index %+v", x)
	}
}

func TestRefusedUpdatesWriteNothing(t *testing.T) {
	st, api, bucket := newStore(t)
	ctx := context.Background()
	if _, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Private; return nil }); err != nil {
		t.Fatal(err)
	}
	key := st.RecordKey(ds)
	before, etag := rawObject(t, api, bucket, key)
	boom := errors.New("boom")
	for name, mutate := range map[string]func(*Record) error{
		"mutation error": func(r *Record) error { r.Visibility = Public; return boom },
		"bad sha256":     func(r *Record) error { r.SHA256 = "ABC"; return nil },
		"bad visibility": func(r *Record) error { r.Visibility = "secret"; return nil },
		"renamed":        func(r *Record) error { r.Name = "Other"; return nil },
		"version no time": func(r *Record) error {
			r.VerifiedVersion = "9cdf8b21033c474db7274ffe113f1f27"
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := st.Update(ctx, ds, mutate)
			if err == nil {
				t.Fatal("update succeeded")
			}
			if name == "mutation error" && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the mutation's", err)
			}
			if name != "mutation error" && !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("error %v, want ErrInvalidRecord", err)
			}
			after, etag2 := rawObject(t, api, bucket, key)
			if after != before || etag2 != etag {
				t.Errorf("record changed:\n%s", after)
			}
		})
	}
	if _, err := st.Update(ctx, ID{"abc", "bad/name"}, func(*Record) error { return nil }); err == nil {
		t.Error("a malformed name was accepted")
	}
}

func TestCorruptOrNewerRecordIsNotOverwritten(t *testing.T) {
	st, api, bucket := newStore(t)
	ctx := context.Background()
	key := st.RecordKey(ds)
	for name, body := range map[string]string{
		"corrupt": `{"schema":1,"accessId":`,
		"newer":   `{"schema":2,"accessId":"20181f26d9e94c81acdf9496133d4f23","name":"FourthCoffeeSample"}`,
		"foreign": `{"schema":1,"accessId":"abc","name":"Other","updated":"2026-01-01T00:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
				t.Fatal(err)
			}
			_, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Public; return nil })
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("update: %v, want ErrInvalidRecord", err)
			}
			if got, _ := rawObject(t, api, bucket, key); got != body {
				t.Errorf("overwritten with %s", got)
			}
		})
	}
}

// Two writers read the same revision; the first write wins, the second gets
// 412, reads again and reapplies its change on top: nothing is lost.
func TestInterleavedWritersBothLand(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := context.Background()
	for _, create := range []bool{true, false} {
		t.Run(fmt.Sprintf("create=%v", create), func(t *testing.T) {
			id := ID{"a1b2c3", fmt.Sprintf("Interleaved%v", create)}
			if !create {
				if _, err := st.Update(ctx, id, func(r *Record) error { r.Visibility = Private; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			var (
				readBoth sync.WaitGroup
				calls    atomic.Int64
			)
			readBoth.Add(2)
			st.beforePut = func(key string) {
				if !strings.HasSuffix(key, ".json") || strings.HasSuffix(key, "index.json") {
					return
				}
				if calls.Add(1) <= 2 {
					readBoth.Done()
					readBoth.Wait() // both have read the same revision
				}
			}
			defer func() { st.beforePut = nil }()
			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, errs[0] = st.Update(ctx, id, func(r *Record) error {
					r.Verified(Archive{Version: "9cdf8b21033c474db7274ffe113f1f27", At: time.Now(), SHA256: sum, EntityCount: 7})
					return nil
				})
			}()
			go func() {
				defer wg.Done()
				_, errs[1] = st.Update(ctx, id, func(r *Record) error {
					r.StartJob("0123456789abcdef0123456789abcdef", time.Now())
					r.Visibility = Public
					return nil
				})
			}()
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("writer %d: %v", i, err)
				}
			}
			got, err := st.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.VerifiedVersion == "" || got.EntityCount != 7 || got.Visibility != Public || len(got.Jobs) != 1 {
				t.Errorf("an update was lost: %+v", got)
			}
			wantRev := int64(2)
			if !create {
				wantRev = 3
			}
			if got.Revision != wantRev {
				t.Errorf("revision %d, want %d", got.Revision, wantRev)
			}
			if calls.Load() < 3 {
				t.Errorf("%d record writes: the race did not happen", calls.Load())
			}
		})
	}
}

// Free-running writers, each adding its own jobs: every job is there at the
// end and the revision counts every write.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := context.Background()
	const writers, each = 4, 8
	base := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("%02d%02d", w, i)
				_, err := st.Update(ctx, ds, func(r *Record) error {
					r.StartJob(id, base.Add(time.Duration(w*each+i)*time.Second))
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := st.Get(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Jobs) != writers*each || got.Revision != writers*each {
		t.Errorf("%d jobs, revision %d; want %d of each", len(got.Jobs), got.Revision, writers*each)
	}
	x, err := st.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.DataSources) != 1 || x.DataSources[0].Revision != got.Revision {
		t.Errorf("index holds %+v, want revision %d", x.DataSources, got.Revision)
	}
}

func TestConflictsAreBounded(t *testing.T) {
	st, api, bucket := newStore(t, WithMaxAttempts(3))
	ctx := context.Background()
	if _, err := st.Update(ctx, ds, func(r *Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	key := st.RecordKey(ds)
	n := 0
	st.beforePut = func(k string) {
		if k != key {
			return
		}
		// Someone else writes between every read and write.
		n++
		body := fmt.Sprintf(`{"schema":1,"accessId":%q,"name":%q,"updated":"2026-01-01T00:00:00Z","revision":%d}`, ds.AccessID, ds.Name, 100+n)
		if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
			t.Error(err)
		}
	}
	_, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Public; return nil })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("update: %v, want ErrConflict", err)
	}
	if n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	st.beforePut = nil
	if got, _ := st.Get(ctx, ds); got.Visibility != "" || got.Revision != 103 {
		t.Errorf("record %+v: the lost writer must not have written", got)
	}
}

func TestIndexNeverGoesBack(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := context.Background()
	a, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Private; return nil })
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Public; return nil })
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.UpdateRecord(ctx, ID{"a1b2c3", "Zeta"}, func(r *Record) error { r.NeedsKey, r.KeyRef = true, "default@v1"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	// A late index write of the older revision, and one carrying a record
	// written without its index.
	if err := st.UpdateIndex(ctx, a, other); err != nil {
		t.Fatal(err)
	}
	x, err := st.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.DataSources) != 2 {
		t.Fatalf("index %+v", x.DataSources)
	}
	if e := x.DataSources[0]; e.Name != ds.Name || e.Revision != b.Revision || e.Visibility != Public {
		t.Errorf("index went back to %+v", e)
	}
	if e := x.DataSources[1]; e.Name != "Zeta" || !e.NeedsKey {
		t.Errorf("second entry %+v", e)
	}
}

func TestList(t *testing.T) {
	st, api, bucket := newStore(t)
	ctx := context.Background()
	for _, n := range []string{"Beta", "alpha", "Gamma"} {
		if _, err := st.UpdateRecord(ctx, ID{"a1b2c3", n}, func(r *Record) error { r.Visibility = Public; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Other objects under the prefix are not records.
	for _, k := range []string{"backups/catalog/v1/sources/readme.txt", "backups/catalog/v1/index.json"} {
		if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	recs, _, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Name)
	}
	if strings.Join(got, ",") != "alpha,Beta,Gamma" {
		t.Errorf("listed %v", got)
	}
}

// UpdateFrom writes without reading while the caller's copy is current, and
// falls back to a read when another writer got there first.
func TestUpdateFrom(t *testing.T) {
	st, _, _ := newStore(t)
	ctx := context.Background()
	first, err := st.UpdateRecord(ctx, ds, func(r *Record) error { r.Visibility = Private; return nil })
	if err != nil {
		t.Fatal(err)
	}
	puts := 0
	st.beforePut = func(k string) {
		if k == st.RecordKey(ds) {
			puts++
		}
	}
	second, err := st.UpdateFrom(ctx, first, func(r *Record) error { r.StartJob("a", time.Now()); return nil })
	if err != nil || second.Revision != 2 || puts != 1 {
		t.Fatalf("revision %d after %d writes: %v", second.Revision, puts, err)
	}
	// first is stale now: its write fails once, then lands on top of second.
	puts = 0
	third, err := st.UpdateFrom(ctx, first, func(r *Record) error { r.Visibility = Public; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if third.Revision != 3 || len(third.Jobs) != 1 || third.Visibility != Public || puts != 2 {
		t.Errorf("revision %d, jobs %d, visibility %s, %d writes", third.Revision, len(third.Jobs), third.Visibility, puts)
	}
	recs, _, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	puts = 0
	if _, err := st.UpdateFrom(ctx, recs[0], func(r *Record) error { r.Visibility = Private; return nil }); err != nil || puts != 1 {
		t.Errorf("update from a listed record: %d writes, %v", puts, err)
	}
}

// putRaw stores body at key as someone else (or bit rot) would.
func putRaw(t *testing.T, api *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// A damaged record is reported as damaged, naming its object; List skips
// it and reports it instead of failing for every data source.
func TestDamagedRecordIsReportedNotRetried(t *testing.T) {
	st, api, bucket := newStore(t)
	ctx := context.Background()
	good := ID{"a1b2c3", "Good"}
	if _, err := st.Update(ctx, good, func(r *Record) error { r.Visibility = Public; return nil }); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"garbage": "\x00not json",
		"foreign": `{"schema":1,"accessId":"zzz","name":"Other","entityCount":0,"needsKey":false,"updated":"2026-01-01T00:00:00Z","revision":1}`,
		"newer":   `{"schema":9,"accessId":"20181f26d9e94c81acdf9496133d4f23","name":"FourthCoffeeSample"}`,
	} {
		t.Run(name, func(t *testing.T) {
			putRaw(t, api, bucket, st.RecordKey(ds), body)
			_, err := st.Get(ctx, ds)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "s3://"+bucket+"/"+st.RecordKey(ds)) {
				t.Errorf("Get: %v, want ErrCorrupt naming the object", err)
			}
			if _, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Private; return nil }); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Update over a damaged record: %v, want ErrCorrupt", err)
			}
			if after, _ := rawObject(t, api, bucket, st.RecordKey(ds)); after != body {
				t.Errorf("Update changed the damaged record: %s", after)
			}
			recs, damaged, err := st.List(ctx)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(recs) != 1 || recs[0].Name != "Good" {
				t.Errorf("List records %v", recs)
			}
			if len(damaged) != 1 || damaged[0].Key != st.RecordKey(ds) || damaged[0].Name != "fourthcoffeesample" || damaged[0].Problem == "" {
				t.Errorf("List damaged %+v", damaged)
			}
		})
	}
}

// Repair replaces a damaged record only after keeping a copy of it, and
// only over the revision it copied.
func TestRepairKeepsTheDamagedRecord(t *testing.T) {
	st, api, bucket := newStore(t)
	ctx := context.Background()
	for range 3 { // revision 3 in the index
		if _, err := st.Update(ctx, ds, func(r *Record) error { r.Visibility = Public; r.LastSeen = time.Now(); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	const garbage = `{"schema":1,"accessId":`
	putRaw(t, api, bucket, st.RecordKey(ds), garbage)
	_, etag := rawObject(t, api, bucket, st.RecordKey(ds))

	// Another writer replaces the damaged object between read and write:
	// Repair must not write over it blindly.
	raced := false
	st.beforePut = func(k string) {
		if k == st.RecordKey(ds) && !raced {
			raced = true
			putRaw(t, api, bucket, k, garbage+" ")
		}
	}
	rec, kept, err := st.Repair(ctx, ds, func(r *Record) error { r.Visibility = Private; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if rec.Visibility != Private || rec.Revision != 4 {
		t.Errorf("repaired record: visibility %q, revision %d (want private, 4)", rec.Visibility, rec.Revision)
	}
	// Both damaged revisions are kept, each under its own key.
	first, _ := rawObject(t, api, bucket, st.DamagedKey(ds, etag))
	if first != garbage {
		t.Errorf("first damaged revision kept as %q", first)
	}
	if kept == st.DamagedKey(ds, etag) {
		t.Errorf("kept at %s: the first copy, not the revision actually replaced", kept)
	}
	if second, _ := rawObject(t, api, bucket, kept); second != garbage+" " {
		t.Errorf("replaced revision kept as %q", second)
	}
	got, err := st.Get(ctx, ds)
	if err != nil || got.Visibility != Private {
		t.Fatalf("after Repair: %+v, %v", got, err)
	}
	x, err := st.Index(ctx)
	if err != nil || len(x.DataSources) != 1 || x.DataSources[0].Revision != 4 || x.DataSources[0].Visibility != Private {
		t.Errorf("index after Repair: %+v, %v", x, err)
	}
	// A sound record is updated as by Update, nothing kept.
	if _, kept, err := st.Repair(ctx, ds, func(r *Record) error { return nil }); err != nil || kept != "" {
		t.Errorf("Repair of a sound record: kept %q, %v", kept, err)
	}
}

// An index that cannot be read is rebuilt from the records, by reading it
// and by writing any record; damaged records are listed in it.
func TestDamagedIndexIsRebuilt(t *testing.T) {
	st, api, bucket := newStore(t)
	ctx := context.Background()
	for _, n := range []string{"Alpha", "Beta"} {
		if _, err := st.Update(ctx, ID{"a1b2c3", n}, func(r *Record) error { r.Visibility = Public; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	putRaw(t, api, bucket, st.RecordKey(ID{"a1b2c3", "Broken"}), "garbage")
	for _, damage := range []string{"garbage", `{"schema":7}`, `{"schema":1,"dataSources":"x"}`} {
		putRaw(t, api, bucket, st.IndexKey(), damage)
		x, err := st.Index(ctx)
		if err != nil {
			t.Fatalf("Index over %q: %v", damage, err)
		}
		if len(x.DataSources) != 2 || x.DataSources[0].Name != "Alpha" || len(x.Damaged) != 1 || x.Damaged[0].Name != "broken" {
			t.Errorf("rebuilt index over %q: %+v", damage, x)
		}
		if stored, _ := rawObject(t, api, bucket, st.IndexKey()); !strings.Contains(stored, `"Beta"`) {
			t.Errorf("rebuilt index not stored: %s", stored)
		}
	}
	// A record write over a damaged index rebuilds it too.
	putRaw(t, api, bucket, st.IndexKey(), "garbage")
	if _, err := st.Update(ctx, ID{"a1b2c3", "Gamma"}, func(r *Record) error { r.Visibility = Private; return nil }); err != nil {
		t.Fatalf("Update over a damaged index: %v", err)
	}
	stored, _ := rawObject(t, api, bucket, st.IndexKey())
	var x Index
	if err := json.Unmarshal([]byte(stored), &x); err != nil || len(x.DataSources) != 3 {
		t.Errorf("index after a record write: %s", stored)
	}
	// A rebuild never overwrites an index written meanwhile.
	putRaw(t, api, bucket, st.IndexKey(), "garbage")
	writes := 0
	st.beforePut = func(k string) {
		if k == st.IndexKey() {
			if writes++; writes == 1 {
				putRaw(t, api, bucket, k, "other garbage")
			}
		}
	}
	if _, err := st.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if writes != 2 {
		t.Errorf("%d index writes, want 2: the first must fail on the index written meanwhile", writes)
	}
	if stored, _ := rawObject(t, api, bucket, st.IndexKey()); !strings.Contains(stored, `"Gamma"`) {
		t.Errorf("index after a raced rebuild: %s", stored)
	}
}
