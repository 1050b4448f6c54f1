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
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/archive"
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
