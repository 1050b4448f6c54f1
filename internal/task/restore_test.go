package task_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/task"
	"github.com/sdsops/sdsops/internal/testenv"
)

// TestRestoreFunctions follows a restore through prepare, load and status
// by hand: the plan names the archive and the existing target, the load is
// Pending until the job completes, the deadline is reported, and the
// completed job names the data source.
func TestRestoreFunctions(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.backupToCompleted()
	arch := f.mustInvoke("copytos3", st)
	key := arch["key"].(string)

	if _, typ, _ := f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": key, "accessId": accessID}); typ != task.InvalidInput {
		t.Errorf("archiveKey with accessId: %s, want InvalidInput", typ)
	}
	if _, typ, _ := f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": "elsewhere/x.xml"}); typ != task.InvalidInput {
		t.Errorf("a key outside the archive prefix: %s, want InvalidInput", typ)
	}
	// An archive key with no manifest: S3's not-found answer, told apart
	// from a failure of S3 (which would be ArchiveUnavailable, retried).
	missing := strings.TrimSuffix(key, ".xml") + "0.xml"
	if _, typ, msg := f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": missing}); typ != task.InvalidInput || !strings.Contains(msg, "no archive manifest") {
		t.Errorf("an archive without a manifest: %s: %s, want InvalidInput naming the missing manifest", typ, msg)
	}
	plan := f.mustInvoke("restore", map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": coffee})
	a := plan["archive"].(map[string]any)
	if a["key"] != key || plan["targetName"] != coffee || plan["targetExists"] != true || plan["targetAccessId"] != accessID {
		t.Fatalf("plan %v", plan)
	}
	if f.emu.Jobs()[len(f.emu.Jobs())-1].Kind != sdsemu.JobDownload {
		t.Fatal("prepare started a job")
	}

	job := f.mustInvoke("restore", map[string]any{"action": "load", "archiveKey": key, "targetName": "CoffeeCopy"})
	if job["status"] != "Pending" || job["operation"] != "load" || job["jobId"] == "" {
		t.Fatalf("load %v", job)
	}
	job = f.mustInvoke("loadstatus", job)
	if job["status"] != "Pending" || job["deadlinePassed"] != false || job["nextWaitSeconds"] != 30.0 {
		t.Fatalf("first status %v", job)
	}
	job["requestedAt"] = time.Now().Add(-13*time.Hour - time.Minute).UTC().Format(time.RFC3339)
	if job = f.mustInvoke("loadstatus", job); job["deadlinePassed"] != true {
		t.Fatalf("a load pending for 13 h: %v", job)
	}
	f.completeJobs()
	job = f.mustInvoke("loadstatus", job)
	if job["status"] != "Completed" || job["accessId"] == "" || job["accessId"] == nil {
		t.Fatalf("completed %v", job)
	}

	if _, typ, _ := f.invoke("rollback", map[string]any{"dataSourceName": coffee, "jobId": "4ad48f44f879c6da79e22ecfd19ffad4", "confirm": "x"}); typ != task.InvalidInput {
		t.Errorf("rollback without confirmation: %s", typ)
	}
	if _, typ, _ := f.invoke("publish", map[string]any{"accessId": accessID, "dataSourceName": coffee, "jobId": "x"}); typ != task.InvalidInput {
		t.Errorf("publish with a job id: %s", typ)
	}
}

// BenchmarkRestore300MB restores the 300 MB, 200,000-entity export from
// S3 (moto) into the emulator, which runs in its own process, through the
// restore function's load path: archive read, sha256 check, gzip upload.
// Reports MB/s of archive and the peak Go heap of this process.
func BenchmarkRestore300MB(b *testing.B) {
	ctx := context.Background()
	s3Client, smClient := testenv.S3(b), testenv.Secrets(b)
	url := testenv.EmulatorProcess(b)

	bucket, secret := testenv.Bucket(b, s3Client), "sdsops/"+testenv.Name(b, "bench")
	if _, err := smClient.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(secret), SecretString: aws.String(masterKey)}); err != nil {
		b.Fatal(err)
	}
	ds := datasettest.Fit("LargeSample", sds.MaxLoadEntities, sds.MaxLoadBytes)
	key := "sds-exports/" + accessID + "/LargeSample/2024/06/01/0123456789abcdef0123456789abcdef.xml"
	h := sha256.New()
	pr, pw := io.Pipe()
	go func() { _, err := ds.WriteTo(io.MultiWriter(pw, h)); pw.CloseWithError(err) }()
	if _, err := transfermanager.New(s3Client).UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: pr}); err != nil {
		b.Fatal(err)
	}
	m := archive.Manifest{FormatVersion: archive.ManifestFormatVersion, AccessID: accessID, DataSourceName: ds.Name, JobID: "0123456789abcdef0123456789abcdef",
		EntityCount: int64(ds.Entities), Bytes: ds.Size(), SHA256: hex.EncodeToString(h.Sum(nil)), Verified: true, Bucket: bucket, Key: key}
	mj, _ := json.Marshal(m)
	if _, err := s3Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key + ".manifest.json"), Body: strings.NewReader(string(mj))}); err != nil {
		b.Fatal(err)
	}

	svc := task.NewService(task.Config{SDSBaseURL: url, MasterKeySecretID: secret, ArchiveBucket: bucket, ArchivePrefix: "sds-exports/", SDSTimeout: 5 * time.Minute},
		task.Deps{Keys: masterkey.New(smClient, time.Minute), Objects: s3Client, SDS: []sds.Option{sds.WithTimeout(5 * time.Minute)}})
	event, _ := json.Marshal(map[string]any{"action": "load", "archiveKey": key, "targetName": "BenchRestore"})
	// Setup once; a benchmark that runs a sub-benchmark is itself run once.
	b.Run("load", func(b *testing.B) { benchRestore(b, svc, event, ds) })
}

func benchRestore(b *testing.B, svc *task.Service, event []byte, ds datasettest.Export) {
	ctx := context.Background()
	b.SetBytes(ds.Size())
	b.ResetTimer()
	var peak uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		stop := testenv.PeakHeap(&peak)
		out, err := svc.Restore(ctx, event)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, _ := json.Marshal(out)
		for {
			res, err := svc.LoadStatus(ctx, st)
			if err != nil {
				b.Fatal(err)
			}
			js := res.(*task.JobState)
			if js.Status == task.StatusCompleted {
				if js.TotalEntityCount != int64(ds.Entities) {
					b.Fatalf("load completed with %d entities", js.TotalEntityCount)
				}
				break
			}
			if js.Status != task.StatusPending {
				b.Fatalf("load %+v", js)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	if peak > 64<<20 {
		b.Errorf("peak heap %.1f MiB, the budget is 64 MiB", float64(peak)/(1<<20))
	}
}

// TestRestoreRefusesUnrestorableArchive: an export with an entity that has
// neither Latitude/Longitude nor a geography is archived as verified (it is
// what the data source holds), but its manifest says restorable: false, the
// archive list shows it, and prepare refuses its restore before any SDS
// job; with force it goes to the load, which the service refuses.
func TestRestoreRefusesUnrestorableArchive(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	ctx := context.Background()
	good := f.mustInvoke("copytos3", f.backupToCompleted())
	if m := readManifest(t, f.bucket, good["key"].(string)); m.Restorable == nil || !*m.Restorable {
		t.Fatalf("the emulator's export: restorable %v %q, want true", m.Restorable, m.RestoreProblems)
	}

	// The same export with the first entity's location taken out.
	body, err := getObject(t, f.bucket, good["key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	s := string(body)
	for _, tag := range []string{"Latitude", "Longitude"} {
		i, j := strings.Index(s, "<"+tag+">"), strings.Index(s, "</"+tag+">")
		s = s[:i] + s[j+len("</"+tag+">"):]
	}
	entities := int64(strings.Count(s, "</EntityID>"))
	store, err := archive.New(s3Client, archive.Config{Bucket: f.bucket, Prefix: "sds-exports/"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	res, err := store.Copy(ctx, archive.Request{AccessID: accessID, DataSourceName: coffee, JobID: "0badc0de0badc0de0badc0de0badc0de",
		VersionJobID: "0badc0de0badc0de0badc0de0badc0df", JobCreated: now, ExpectedEntities: entities, StartedAt: now},
		func(context.Context) (archive.Export, error) {
			return archive.Export{Body: io.NopCloser(strings.NewReader(s)), Length: int64(len(s))}, nil
		})
	if err != nil || !res.Verified {
		t.Fatalf("copy: %v, verified %v: want a verified archive, as before", err, res.Verified)
	}
	m := readManifest(t, f.bucket, res.Key)
	if m.Restorable == nil || *m.Restorable || len(m.RestoreProblems) != 1 || !strings.Contains(m.RestoreProblems[0], "entity 1: the entity has no location") {
		t.Fatalf("manifest restorable %v, restoreProblems %q; want false, entity 1 has no location", m.Restorable, m.RestoreProblems)
	}

	list, err := call(t, f.service(&countingS3{Client: s3Client}).Inventory, map[string]any{"accessId": accessID, "dataSourceName": coffee})
	if err != nil {
		t.Fatal(err)
	}
	shown := map[any]any{}
	for _, a := range list["archives"].([]any) {
		a := a.(map[string]any)
		shown[a["key"]] = a["restorable"]
	}
	if shown[res.Key] != false || shown[good["key"]] != true {
		t.Errorf("archive list shows restorable %v", shown)
	}

	jobs := len(f.emu.Jobs())
	_, typ, msg := f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": res.Key, "targetName": "CoffeeRestored"})
	if typ != task.ArchiveUnrestorable || !strings.Contains(msg, "has no location") || !strings.Contains(msg, "force") {
		t.Fatalf("prepare: %s: %s; want ArchiveUnrestorable naming the reason and force", typ, msg)
	}
	if n := len(f.emu.Jobs()); n != jobs {
		t.Errorf("%d SDS jobs started by a refused restore", n-jobs)
	}

	// Named by data source only, the restore falls back to the newest
	// archive that is verified and restorable; with force it takes the newest.
	plan := f.mustInvoke("restore", map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": coffee, "targetName": "CoffeeRestored"})
	if got := plan["archive"].(map[string]any)["key"]; got != good["key"] {
		t.Errorf("restore by data source chose %v, want the older restorable %v over the newer unrestorable %s", got, good["key"], res.Key)
	}
	plan = f.mustInvoke("restore", map[string]any{"action": "prepare", "accessId": accessID, "dataSourceName": coffee, "targetName": "CoffeeRestored", "force": true})
	if got := plan["archive"].(map[string]any)["key"]; got != res.Key {
		t.Errorf("forced restore by data source chose %v, want the newest %s", got, res.Key)
	}

	// With force it goes ahead, and the load refuses the entity.
	plan = f.mustInvoke("restore", map[string]any{"action": "prepare", "archiveKey": res.Key, "targetName": "CoffeeRestored", "force": true})
	if plan["archive"].(map[string]any)["restorable"] != false {
		t.Errorf("plan %v does not carry restorable: false", plan)
	}
	job := f.mustInvoke("restore", map[string]any{"action": "load", "archiveKey": res.Key, "targetName": "CoffeeRestored", "force": true})
	f.completeJobs()
	job = f.mustInvoke("loadstatus", job)
	if job["status"] != "Aborted" || !strings.Contains(job["errorMessage"].(string), "failed validation") {
		t.Fatalf("forced load: %v; want the load aborted by the service", job)
	}
	failed, err := getObject(t, f.bucket, job["failedOutputKey"].(string))
	if err != nil || !strings.Contains(string(failed), "no location") {
		t.Errorf("failed output %q, %v; want the entity without location", failed, err)
	}
}

func readManifest(t *testing.T, bucket, key string) archive.Manifest {
	t.Helper()
	sm, err := archive.ReadManifest(context.Background(), s3Client, bucket, key+archive.ManifestSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return sm.Manifest
}

// TestRestoreVisibility: prepare chooses the visibility the restored data
// source ends with: the request's when given, else the existing target's,
// else (after a delete) the one the catalog recorded; a copy under a new
// name is private. A staged load itself is never public. A catalog that
// cannot be read stops the restore instead of silently restoring a public
// data source private.
func TestRestoreVisibility(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	ctx := context.Background()
	key := f.mustInvoke("copytos3", f.backupToCompleted())["key"].(string)
	cat := catalog.New(s3Client, f.bucket, "")
	id := catalog.ID{AccessID: accessID, Name: coffee}
	setRecorded := func(v string) {
		t.Helper()
		if _, err := cat.Update(ctx, id, func(r *catalog.Record) error { r.Visibility = v; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	prepare := func(extra map[string]any) map[string]any {
		t.Helper()
		ev := map[string]any{"action": "prepare", "archiveKey": key}
		for k, v := range extra {
			ev[k] = v
		}
		return f.mustInvoke("restore", ev)
	}
	type want struct {
		public bool
		from   string
	}
	check := func(name string, extra map[string]any, w want) {
		t.Helper()
		plan := prepare(extra)
		if plan["public"] != w.public || plan["publicFrom"] != w.from {
			t.Errorf("%s: public %v from %v, want %v from %s", name, plan["public"], plan["publicFrom"], w.public, w.from)
		}
		// The load sets it, unless staged: SDS refuses a public staged load.
		if want := w.public && extra["staging"] != true; plan["loadPublic"] != want {
			t.Errorf("%s: loadPublic %v, want %v", name, plan["loadPublic"], want)
		}
	}

	// The emulator's FourthCoffeeSample is public; the catalog says private:
	// the live data source wins while it exists.
	setRecorded(catalog.Private)
	check("existing public target", nil, want{true, task.PublicFromDataSource})
	check("existing target, public false asked", map[string]any{"public": false}, want{false, task.PublicFromRequest})
	check("copy under a new name", map[string]any{"targetName": "CoffeeCopy"}, want{false, task.PublicFromNone})
	check("copy, public asked", map[string]any{"targetName": "CoffeeCopy", "public": true}, want{true, task.PublicFromRequest})
	check("staged over the existing public target", map[string]any{"staging": true}, want{true, task.PublicFromDataSource})
	if _, typ, _ := f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": key, "staging": true, "public": true}); typ != task.InvalidInput {
		t.Errorf("staged and public: %s, want InvalidInput", typ)
	}

	// Deleted: the catalog's record decides.
	f.mustInvoke("delete", map[string]any{"accessId": accessID, "dataSourceName": coffee, "confirm": coffee})
	f.completeJobs()
	if _, ok := f.emu.DataSource(accessID, coffee); ok {
		t.Fatal("the data source still exists")
	}
	setRecorded(catalog.Public)
	check("deleted, recorded public", nil, want{true, task.PublicFromCatalog})
	check("staged, deleted, recorded public", map[string]any{"staging": true}, want{true, task.PublicFromCatalog})
	check("deleted, recorded public, public false asked", map[string]any{"public": false}, want{false, task.PublicFromRequest})
	setRecorded(catalog.Private)
	check("deleted, recorded private", nil, want{false, task.PublicFromCatalog})
	setRecorded("")
	check("deleted, nothing recorded", nil, want{false, task.PublicFromNone})

	f.putObject(cat.RecordKey(id), "not json")
	_, typ, msg := f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": key})
	if typ != task.CatalogCorrupt || !strings.Contains(msg, `"public"`) {
		t.Errorf("damaged record: %s: %s; want CatalogCorrupt saying how to go on", typ, msg)
	}
	check("damaged record, public given", map[string]any{"public": true}, want{true, task.PublicFromRequest})

	// The load applies the plan's visibility.
	job := f.mustInvoke("restore", map[string]any{"action": "load", "archiveKey": key, "public": true})
	f.completeJobs()
	if job = f.mustInvoke("loadstatus", job); job["status"] != "Completed" {
		t.Fatalf("load %v", job)
	}
	d, ok := f.emu.DataSource(job["accessId"].(string), coffee)
	if !ok || !d.IsPublic {
		t.Errorf("restored data source: %v, public %v; want it public", ok, d.IsPublic)
	}
}

// TestArchiveInColdStorage: an archive moved to GLACIER (S3 answers
// InvalidObjectState to reading it) fails restore and convert at once with
// ArchiveInColdStorage, which no state machine retries, naming the remedy;
// nothing is loaded.
func TestArchiveInColdStorage(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	ctx := context.Background()
	key := f.mustInvoke("copytos3", f.backupToCompleted())["key"].(string)
	toGlacier := func(k string) {
		t.Helper()
		body, err := getObject(t, f.bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s3Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(k), Body: strings.NewReader(string(body)), StorageClass: s3types.StorageClassGlacier}); err != nil {
			t.Fatal(err)
		}
	}
	coldOnly := func(what string, typ, msg string) {
		t.Helper()
		if typ != task.ArchiveInColdStorage || !strings.Contains(msg, "restore-object") {
			t.Errorf("%s: %s: %s; want ArchiveInColdStorage naming the S3 restore", what, typ, msg)
		}
	}

	// The archive only: the manifest is read, the archive's bytes are not.
	toGlacier(key)
	jobs := len(f.emu.Jobs())
	f.mustInvoke("restore", map[string]any{"action": "prepare", "archiveKey": key, "targetName": "ColdCopy"})
	_, typ, msg := f.invoke("restore", map[string]any{"action": "load", "archiveKey": key, "targetName": "ColdCopy", "public": false})
	coldOnly("load", typ, msg)
	if n := len(f.emu.Jobs()); n != jobs {
		t.Errorf("%d SDS jobs started by a load of an archive in GLACIER", n-jobs)
	}
	_, typ, msg = f.invoke("convert", map[string]any{"key": key})
	coldOnly("convert", typ, msg)

	// The manifest too (the lifecycle rule moves both): prepare stops.
	toGlacier(key + archive.ManifestSuffix)
	_, typ, msg = f.invoke("restore", map[string]any{"action": "prepare", "archiveKey": key})
	coldOnly("prepare", typ, msg)
}

// A restore into a new name in an account that has its maximum of data
// sources fails with DataSourceLimit (SDS's 403), not Unauthorized: the
// key is right, a slot is missing.
func TestRestoreIntoFullAccount(t *testing.T) {
	f := newFixture(t, masterKey, func(c *sdsemu.Config) {
		for _, a := range c.Accounts {
			if a.Name == "Fourth Coffee" {
				c.MaxDataSources = len(a.DataSources)
			}
		}
	})
	key := f.mustInvoke("copytos3", f.backupToCompleted())["key"].(string)
	_, typ, msg := f.invoke("restore", map[string]any{"action": "load", "archiveKey": key, "targetName": "NoRoomForMe"})
	if typ != task.DataSourceLimit || !strings.Contains(msg, "maximum") || strings.Contains(msg, "master key") {
		t.Errorf("load into a full account: %s: %s, want %s with the service's reason", typ, msg, task.DataSourceLimit)
	}
	// Overwriting an existing data source needs no slot.
	if _, typ, msg := f.invoke("restore", map[string]any{"action": "load", "archiveKey": key, "targetName": coffee}); typ != "" {
		t.Errorf("load over %s in a full account: %s: %s", coffee, typ, msg)
	}
	f.checkNoKeyLeaked()
}
