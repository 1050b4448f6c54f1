package task_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/task"
)

var layout = archive.NewLayout("sds-exports/")

// countingS3 passes every call to moto and counts the reads.
type countingS3 struct {
	*s3.Client
	gets, lists atomic.Int64
}

func (c *countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	c.gets.Add(1)
	return c.Client.GetObject(ctx, in, opts...)
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	c.lists.Add(1)
	return c.Client.ListObjectsV2(ctx, in, opts...)
}

// service is a Service on f's emulator, secret and bucket reading S3
// through api, with the catalog in f's bucket.
func (f *fixture) service(api *countingS3) *task.Service {
	tc := task.Config{SDSBaseURL: f.srv.URL, MasterKeySecretID: f.secretID, ArchiveBucket: f.bucket, ArchivePrefix: layout.Prefix()}
	return task.NewService(tc, task.Deps{Keys: masterkey.New(smClient, time.Minute), Objects: api, Catalog: catalog.New(s3Client, f.bucket, ""),
		SDS: []sds.Option{sds.WithRetry(sds.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxRetryAfter: time.Second})}})
}

// jobID is a made-up download job id: random-looking, so that key order
// within a day is not the order of the jobs.
func jobID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// manifestOf is the manifest a backup would write for r, finished at
// finished; no archive object is written with it.
func manifestOf(bucket string, r archive.Ref, finished time.Time, verified bool) archive.Manifest {
	sum := sha256.Sum256([]byte(r.JobID))
	m := archive.Manifest{FormatVersion: archive.ManifestFormatVersion, AccessID: r.AccessID, DataSourceName: r.DataSourceName,
		JobID: r.JobID, VersionJobID: r.JobID, EntityCount: 24, Bytes: 4096, SHA256: hex.EncodeToString(sum[:]),
		ContentType: archive.ContentType, Verified: verified, Bucket: bucket, Key: layout.Key(r),
		StartedAt: finished.Add(-time.Minute), FinishedAt: finished}
	if !verified {
		m.Problems = []string{"entity count 23, the job reported 24"}
	}
	return m
}

// putManifests writes the manifests, a few at a time.
func putManifests(t *testing.T, ms ...archive.Manifest) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan archive.Manifest)
	errs := make(chan error, len(ms))
	for range 8 {
		wg.Go(func() {
			for m := range work {
				body, _ := json.Marshal(m)
				_, err := s3Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(m.Bucket),
					Key: aws.String(m.Key + archive.ManifestSuffix), Body: strings.NewReader(string(body))})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for _, m := range ms {
		work <- m
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func errorType(err error) string {
	var e *task.Error
	if errors.As(err, &e) {
		return e.Type
	}
	return fmt.Sprintf("%T", err)
}

func call(t *testing.T, fn func(context.Context, []byte) (any, error), event any) (map[string]any, error) {
	t.Helper()
	raw, _ := json.Marshal(event)
	out, err := fn(context.Background(), raw)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(out)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

// TestRestoreFindsNewestAmongThousands: with 1,051 archives over 351 days
// (more than one listing page, the newest listed last), a restore without
// a key takes the newest verified archive, and an unverified one only with
// force; a few requests suffice.
func TestRestoreFindsNewestAmongThousands(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	const name = "ManyArchives"
	first := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	var ms []archive.Manifest
	for d := range 350 {
		for j := range 3 {
			day := first.AddDate(0, 0, d)
			r := archive.Ref{AccessID: accessID, DataSourceName: name, Day: day, JobID: jobID(fmt.Sprint(d, j))}
			ms = append(ms, manifestOf(f.bucket, r, day.Add(time.Duration(j+1)*time.Hour), true))
		}
	}
	// The newest day holds only an unverified archive.
	lastDay := first.AddDate(0, 0, 351)
	unverified := manifestOf(f.bucket, archive.Ref{AccessID: accessID, DataSourceName: name, Day: lastDay, JobID: jobID("unverified")}, lastDay.Add(time.Hour), false)
	putManifests(t, append(ms, unverified)...)
	newest := ms[len(ms)-1] // finished last on day 349
	for _, m := range ms[len(ms)-3:] {
		if m.FinishedAt.After(newest.FinishedAt) {
			t.Fatal("test data: the newest verified archive is not the last written")
		}
	}

	api := &countingS3{Client: s3Client}
	svc := f.service(api)
	plan, err := call(t, svc.Restore, map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": name})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan["archive"].(map[string]any)["key"]; got != newest.Key {
		t.Fatalf("chose %v, want the newest verified archive %s", got, newest.Key)
	}
	t.Logf("newest of %d archives: %d listings, %d manifest reads", len(ms)+1, api.lists.Load(), api.gets.Load())
	if n := api.gets.Load() + api.lists.Load(); n > 20 {
		t.Errorf("%d S3 requests (%d listings, %d reads) to find the newest archive", n, api.lists.Load(), api.gets.Load())
	}
	plan, err = call(t, svc.Restore, map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": name, "force": true})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan["archive"].(map[string]any)["key"]; got != unverified.Key {
		t.Errorf("with force chose %v, want the newest archive %s", got, unverified.Key)
	}
	// A date still finds the newest of its day.
	plan, err = call(t, svc.Restore, map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": name, "date": "2023-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan["archive"].(map[string]any)["key"]; got != ms[2].Key {
		t.Errorf("on 2023-01-01 chose %v, want %s", got, ms[2].Key)
	}
}

// TestRestorePassesOverStagedArchives: the newest archive of a staged
// version is restored only when its version is named; otherwise the
// newest published one is.
func TestRestorePassesOverStagedArchives(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	const name = "StagedToo"
	day := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	published := manifestOf(f.bucket, archive.Ref{AccessID: accessID, DataSourceName: name, Day: day, JobID: jobID("published")}, day.Add(time.Hour), true)
	staged := manifestOf(f.bucket, archive.Ref{AccessID: accessID, DataSourceName: name, Day: day.AddDate(0, 0, 1), JobID: jobID("staged")}, day.Add(26*time.Hour), true)
	staged.Staging = true
	putManifests(t, published, staged)
	svc := f.service(&countingS3{Client: s3Client})
	for _, tc := range []struct {
		ev   map[string]any
		want string
	}{
		{map[string]any{}, published.Key},
		{map[string]any{"versionJobId": staged.JobID}, staged.Key},
	} {
		ev := map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": name}
		maps.Copy(ev, tc.ev)
		plan, err := call(t, svc.Restore, ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := plan["archive"].(map[string]any)["key"]; got != tc.want {
			t.Errorf("%v chose %v, want %s", tc.ev, got, tc.want)
		}
	}
}

// TestPrepareRefusesUnloadableArchive: an archive the load would refuse
// (over SDS's limits, or with no size) is refused by prepare, before the
// restore backs up the existing target.
func TestPrepareRefusesUnloadableArchive(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	svc := f.service(&countingS3{Client: s3Client})
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	jobs := len(f.emu.Jobs())
	for why, mutate := range map[string]func(*archive.Manifest){
		"300,000,001 bytes":    func(m *archive.Manifest) { m.Bytes = sds.MaxLoadBytes + 1 },
		"200,001 entities":     func(m *archive.Manifest) { m.EntityCount = sds.MaxLoadEntities + 1 },
		"no bytes":             func(m *archive.Manifest) { m.Bytes = 0 },
		"negative entities":    func(m *archive.Manifest) { m.EntityCount = -1 },
		"an unusable sha256":   func(m *archive.Manifest) { m.SHA256 = "abc" },
		"another data source":  func(m *archive.Manifest) { m.DataSourceName = "Other" },
		"another job":          func(m *archive.Manifest) { m.JobID = jobID("other") },
		"another archive key":  func(m *archive.Manifest) { m.Key = strings.Replace(m.Key, "2024/06/01", "2024/06/02", 1) },
		"an old format":        func(m *archive.Manifest) { m.FormatVersion = 1 },
		"within limits (ok)":   func(m *archive.Manifest) { m.Bytes, m.EntityCount = sds.MaxLoadBytes, sds.MaxLoadEntities },
		"staged and too large": func(m *archive.Manifest) { m.EntityCount = sds.MaxLoadEntities + 1 },
	} {
		t.Run(why, func(t *testing.T) {
			m := manifestOf(f.bucket, archive.Ref{AccessID: accessID, DataSourceName: coffee, Day: day, JobID: jobID(why)}, day, true)
			key := m.Key
			mutate(&m)
			body, _ := json.Marshal(m)
			if _, err := s3Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key + archive.ManifestSuffix), Body: strings.NewReader(string(body))}); err != nil {
				t.Fatal(err)
			}
			ev := map[string]any{"action": "prepare", "archiveKey": key}
			if strings.HasPrefix(why, "staged") {
				ev["staging"] = true
			}
			plan, err := call(t, svc.Restore, ev)
			if strings.HasSuffix(why, "(ok)") {
				if err != nil || plan["targetExists"] != true {
					t.Fatalf("%v %v", plan, err)
				}
				return
			}
			if typ := errorType(err); typ != task.InvalidInput && typ != task.IntegrityError {
				t.Fatalf("prepare of an archive with %s: %v, %v; want it refused", why, plan, err)
			}
			if n := len(f.emu.Jobs()); n != jobs {
				t.Errorf("%d jobs started", n-jobs)
			}
		})
	}
}

// TestArchiveListOrdersADayBeforeCutting: several archives of one day
// (keys in job id order) are ordered by when they finished before the
// list is cut to its limit.
func TestArchiveListOrdersADayBeforeCutting(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	svc := f.service(&countingS3{Client: s3Client})
	const name = "OneBusyDay"
	day, older := time.Date(2024, 6, 2, 0, 0, 0, 0, time.UTC), time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	var ms []archive.Manifest
	for i := range 5 {
		r := archive.Ref{AccessID: accessID, DataSourceName: name, Day: day, JobID: jobID(fmt.Sprint("busy", i))}
		ms = append(ms, manifestOf(f.bucket, r, day.Add(time.Duration(i+1)*time.Hour), true))
	}
	for i := range 2 {
		r := archive.Ref{AccessID: accessID, DataSourceName: name, Day: older, JobID: jobID(fmt.Sprint("older", i))}
		ms = append(ms, manifestOf(f.bucket, r, older.Add(time.Duration(i+1)*time.Hour), true))
	}
	putManifests(t, ms...)
	// Newest first: busy4 … busy0, then older1, older0.
	want := []string{ms[4].JobID, ms[3].JobID, ms[2].JobID, ms[1].JobID, ms[0].JobID, ms[6].JobID, ms[5].JobID}
	for _, tc := range []struct {
		limit     int
		truncated bool
	}{{1, true}, {2, true}, {5, true}, {6, true}, {7, false}, {50, false}} {
		out, err := call(t, svc.Inventory, map[string]any{"accessId": accessID, "dataSourceName": name, "limit": tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range out["archives"].([]any) {
			got = append(got, a.(map[string]any)["jobId"].(string))
		}
		if fmt.Sprint(got) != fmt.Sprint(want[:min(tc.limit, len(want))]) || (out["truncated"] == true) != tc.truncated {
			t.Errorf("limit %d: %v truncated %v\nwant %v truncated %v", tc.limit, got, out["truncated"], want[:min(tc.limit, len(want))], tc.truncated)
		}
	}
}

// TestRecordOnlyVerifiedArchivesOfTheDataSource: record stores a backup
// result as the data source's verified archive only when its key is an
// archive of that data source whose manifest exists and is verified.
func TestRecordOnlyVerifiedArchivesOfTheDataSource(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	svc := f.service(&countingS3{Client: s3Client})
	cat := catalog.New(s3Client, f.bucket, "")
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	ref := func(name, job string) archive.Ref {
		return archive.Ref{AccessID: accessID, DataSourceName: name, Day: day, JobID: jobID(job)}
	}
	good := manifestOf(f.bucket, ref(coffee, "good"), day, true)
	other := manifestOf(f.bucket, ref("FourthCoffeeRoasteries", "other"), day, true)
	unverified := manifestOf(f.bucket, ref(coffee, "unverified"), day, false)
	noManifest := layout.Key(ref(coffee, "nomanifest"))
	putManifests(t, good, other, unverified)
	result := func(key string) map[string]any {
		return map[string]any{"operation": "backup", "accessId": accessID, "dataSourceName": coffee,
			"result": map[string]any{"key": key, "versionJobId": good.VersionJobID, "verified": true, "sha256": good.SHA256, "entityCount": 24}}
	}
	wrongSHA := result(good.Key)
	wrongSHA["result"].(map[string]any)["sha256"] = strings.Repeat("0", 64)
	for why, ev := range map[string]map[string]any{
		"a path out":                  result("../../etc/passwd"),
		"the catalog's index":         result("catalog/v1/index.json"),
		"another bucket":              result("s3://other-bucket/x.xml"),
		"a manifest's key":            result(good.Key + archive.ManifestSuffix),
		"another data source's":       result(other.Key),
		"an archive with no manifest": result(noManifest),
		"an unverified archive":       result(unverified.Key),
		"a sha256 not the manifest's": wrongSHA,
	} {
		if out, err := call(t, svc.Record, ev); err == nil {
			t.Errorf("%s: recorded %v", why, out)
		} else if typ := errorType(err); typ != task.InvalidInput && typ != task.IntegrityError {
			t.Errorf("%s: %v", why, err)
		}
	}
	if rec, err := cat.Get(context.Background(), catalog.ID{AccessID: accessID, Name: coffee}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("refused results left a record: %+v, %v", rec, err)
	}

	out, err := call(t, svc.Record, result(good.Key))
	if err != nil || out["status"] != task.StatusArchived {
		t.Fatalf("record of a verified archive: %v, %v", out, err)
	}
	rec, err := cat.Get(context.Background(), catalog.ID{AccessID: accessID, Name: coffee})
	if err != nil || rec.ArchiveKey != good.Key || rec.VerifiedVersion != good.VersionJobID || rec.SHA256 != good.SHA256 {
		t.Errorf("record %+v, %v; want archive %s", rec, err, good.Key)
	}
}

// TestEventKeysChecked: restore and loadstatus take an archiveKey only when
// it is an archive key of the layout, normalized and within S3's 1,024
// bytes, before anything is read from S3 or asked of SDS.
func TestEventKeysChecked(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	api := &countingS3{Client: s3Client}
	svc := f.service(api)
	const dir = "sds-exports/" + accessID + "/" + coffee + "/2024/06/01/"
	for why, key := range map[string]string{
		"dot-dot":        dir + "../../../../../../catalog/v1/0123abcd.xml",
		"dot-slash":      "sds-exports/./" + accessID + "/" + coffee + "/2024/06/01/0123abcd.xml",
		"double slash":   dir + "/0123abcd.xml",
		"NUL":            dir + "0123\x00abcd.xml",
		"over 1,024":     dir + strings.Repeat("a", 1020) + ".xml",
		"a manifest key": dir + "0123abcd.xml" + archive.ManifestSuffix,
		"not the layout": dir + "extra/0123abcd.xml",
	} {
		_, err := call(t, svc.Restore, map[string]any{"action": "prepare", "archiveKey": key})
		if typ := errorType(err); typ != task.InvalidInput || !strings.Contains(err.Error(), "archiveKey") {
			t.Errorf("restore of %s: %v; want InvalidInput naming archiveKey", why, err)
		}
		jobs := len(f.emu.Jobs())
		_, err = call(t, svc.LoadStatus, map[string]any{"operation": "load", "dataSourceName": coffee, "jobId": "0123abcd",
			"statusUrl": f.srv.URL + "/REST/v1/Dataflows/LoadDataSource/0123abcd", "requestedAt": time.Now().UTC().Format(time.RFC3339),
			"status": "Pending", "archiveKey": key})
		if typ := errorType(err); typ != task.InvalidInput || !strings.Contains(err.Error(), "archiveKey") || len(f.emu.Jobs()) != jobs {
			t.Errorf("loadstatus with %s: %v; want InvalidInput naming archiveKey", why, err)
		}
	}
	if n := api.gets.Load() + api.lists.Load(); n != 0 {
		t.Errorf("%d S3 requests for keys that are not archive keys", n)
	}
}
