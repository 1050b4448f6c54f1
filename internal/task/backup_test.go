package task_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/task"
)

func TestBackupEndToEnd(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.mustInvoke("startdownload", startEvent())
	for _, k := range []string{"accessId", "dataSourceName", "operation", "jobId", "statusUrl", "status"} {
		if st[k] == nil || st[k] == "" {
			t.Errorf("startdownload result lacks %q: %v", k, st)
		}
	}
	if r := decode[jobResult](t, st); r.Operation != "download" || r.Status != "Pending" || strings.Contains(r.StatusURL, "key=") {
		t.Fatalf("startdownload result %v", st)
	}
	st["traceContext"] = map[string]any{"from": "scheduler"} // a field the functions do not own

	st = f.mustInvoke("checkstatus", st)
	if r := decode[jobResult](t, st); r.Status != "Pending" || r.PollCount != 1 || r.NextWaitSeconds == nil || *r.NextWaitSeconds != 30 {
		t.Fatalf("pending check: %v", st)
	}
	f.completeJobs()
	st = f.mustInvoke("checkstatus", st)
	done := decode[jobResult](t, st)
	if done.Status != "Completed" || done.TotalEntityCount != 350 || done.DownloadURL == nil || done.NextWaitSeconds != nil {
		t.Fatalf("completed check: %v", st)
	}

	out := f.mustInvoke("copytos3", st)
	cp := decode[copyResult](t, out)
	if cp.Bucket != f.bucket || cp.EntityCount != 350 || cp.Reused == nil || *cp.Reused {
		t.Fatalf("copytos3 result %v", out)
	}
	if cp.TraceContext.From != "scheduler" {
		t.Errorf("unowned field not passed through: %v", out["traceContext"])
	}
	key := cp.Key
	wantPrefix := "sds-exports/" + accessID + "/" + coffee + "/"
	if !strings.HasPrefix(key, wantPrefix) || !strings.HasSuffix(key, "/"+done.JobID+".xml") {
		t.Errorf("object key %q, want %s<yyyy>/<mm>/<dd>/<jobId>.xml", key, wantPrefix)
	}
	body, err := getObject(t, f.bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != cp.SHA256 || int64(len(body)) != cp.Bytes {
		t.Errorf("archived object (%d bytes) does not match the reported size/sha256 %v/%v", len(body), out["bytes"], out["sha256"])
	}
	manifest, err := getObject(t, f.bucket, cp.ManifestKey)
	if err != nil {
		t.Fatal(err)
	}
	if m := decode[manifestDoc](t, manifest); m.SHA256 != cp.SHA256 || m.JobID != done.JobID || m.EntityCount != 350 {
		t.Errorf("manifest %s", manifest)
	}
	if doc := decode[map[string]any](t, manifest); doc["staging"] != nil {
		t.Errorf("the published version's manifest says staging: %s", manifest)
	}

	// A retried copy (Step Functions retry, duplicate schedule) reuses the
	// archive without downloading again.
	downloads := f.downloads()
	again := f.mustInvoke("copytos3", st)
	if again["reused"] != true || again["key"] != key || again["sha256"] != out["sha256"] {
		t.Errorf("second copy %v", again)
	}
	if f.downloads() != downloads {
		t.Errorf("second copy downloaded the export again")
	}
}

func (f *fixture) downloads() int {
	n := 0
	for _, r := range f.emu.Requests() {
		if r.Operation == sdsemu.OpDownloadData {
			n++
		}
	}
	return n
}

func TestCopyRefusesBrokenExports(t *testing.T) {
	tests := []struct {
		name  string
		fault sdsemu.Fault
		want  string
	}{
		{"truncated", sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultTruncate, Bytes: 5000, Times: -1}, "SdsUnavailable"},
		{"reset", sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultReset, Bytes: 5000, Times: -1}, "SdsUnavailable"},
		{"longer than announced", sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultOverlong, Bytes: 5000, Times: -1}, "IntegrityError"},
		{"expired output link", sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultStatus, Status: 404, Times: -1}, "DataSourceNotFound"},
		{"503 on every try", sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultStatus, Status: 503, Times: -1}, "SdsUnavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, masterKey, nil)
			st := f.backupToCompleted()
			f.emu.AddFault(tt.fault)
			_, typ, msg := f.invoke("copytos3", st)
			if typ != tt.want {
				t.Fatalf("error type %s (%s), want %s", typ, msg, tt.want)
			}
			if objects, uploads := objectCount(t, f.bucket); objects != 0 || uploads != 0 {
				t.Errorf("S3 holds %d objects and %d multipart uploads after a failed copy", objects, uploads)
			}
		})
	}
}

// TestCopyUnverifiedKeepsArchive: an export whose entity count differs
// from the job's is archived with a manifest that says so, and the copy
// fails with ArchiveUnverified naming the archive and the reason.
func TestCopyUnverifiedKeepsArchive(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.backupToCompleted()
	st["totalEntityCount"] = 351 // the job said one more than the export holds
	_, typ, msg := f.invoke("copytos3", st)
	if typ != "ArchiveUnverified" || !strings.Contains(msg, "the job reported 351") || !strings.Contains(msg, "s3://"+f.bucket+"/sds-exports/") {
		t.Fatalf("got %s: %s, want ArchiveUnverified naming the archive and the count", typ, msg)
	}
	if objects, uploads := objectCount(t, f.bucket); objects != 2 || uploads != 0 {
		t.Errorf("S3 holds %d objects, %d uploads; want the archive and its manifest", objects, uploads)
	}
	// The retry a user might start gets the same answer without a download.
	downloads := len(f.emu.Requests())
	if _, typ2, _ := f.invoke("copytos3", st); typ2 != "ArchiveUnverified" || len(f.emu.Requests()) != downloads {
		t.Errorf("second copy: %s after %d more requests", typ2, len(f.emu.Requests())-downloads)
	}
}

func TestAbortedJob(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.mustInvoke("startdownload", startEvent())
	jobID := decode[jobResult](t, st).JobID
	f.emu.AbortJob(jobID, "Data source could not be exported.")
	st = f.mustInvoke("checkstatus", st)
	if st["status"] != "Aborted" || st["errorMessage"] != "Data source could not be exported." || st["downloadUrl"] != nil {
		t.Fatalf("aborted check: %v", st)
	}
	st["status"] = "Completed"
	st["downloadUrl"] = f.srv.URL + "/REST/v1/dataflows/DataSourceDownload/" + accessID + "/" + coffee + "/" + jobID + "/output/succeeded"
	if _, typ, _ := f.invoke("copytos3", st); typ == "" {
		t.Error("copying an aborted job's output succeeded")
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "old-wrong-key", nil)
	if _, typ, msg := f.invoke("startdownload", startEvent()); typ != "Unauthorized" {
		t.Fatalf("with a wrong key: %s %s, want Unauthorized", typ, msg)
	}
	// The secret is rotated; the container still caches the old value.
	if _, err := smClient.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.secretID), SecretString: aws.String(`{"masterKey":"` + masterKey + `"}`)}); err != nil {
		t.Fatal(err)
	}
	out := f.mustInvoke("startdownload", startEvent())
	if out["status"] != "Pending" {
		t.Fatalf("after rotation: %v", out)
	}
	if !strings.Contains(f.logs.String(), "retrying once") {
		t.Error("no log line tells that the refused key was re-read")
	}
}

func TestSecretProblems(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		f := newFixture(t, "", nil) // no secret created
		_, typ, msg := f.invoke("startdownload", startEvent())
		if typ != "SecretNotFound" || !strings.Contains(msg, f.secretID) {
			t.Fatalf("%s: %s", typ, msg)
		}
		if n := len(f.emu.Requests()); n != 0 {
			t.Errorf("%d SDS requests without a key", n)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		f := newFixture(t, `{"masterKey": `, nil)
		if _, typ, msg := f.invoke("delete", map[string]any{"accessId": accessID, "dataSourceName": coffee, "confirm": coffee}); typ != "SecretNotFound" || !strings.Contains(msg, "JSON") {
			t.Fatalf("%s: %s", typ, msg)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		f := newFixture(t, masterKey, nil)
		smClient.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(f.secretID), ForceDeleteWithoutRecovery: aws.Bool(true)})
		if _, typ, msg := f.invoke("startdownload", startEvent()); typ != "SecretNotFound" {
			t.Fatalf("%s: %s", typ, msg)
		}
	})
	t.Run("named by the event", func(t *testing.T) {
		f := newFixture(t, "old-wrong-key", nil)
		other := "sdsops/" + unique(t, "other")
		smClient.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(other), SecretString: aws.String(masterKey)})
		ev := startEvent()
		ev["masterKeySecretId"] = other
		out := f.mustInvoke("startdownload", ev)
		if out["masterKeySecretId"] != other {
			t.Errorf("the secret id is not carried to the next step: %v", out)
		}
		if st := f.mustInvoke("checkstatus", out); st["status"] != "Pending" {
			t.Errorf("checkstatus with the event's secret: %v", st)
		}
	})
}

func TestSDSErrorTypes(t *testing.T) {
	tests := []struct {
		name   string
		faults []sdsemu.Fault
		event  map[string]any
		want   string
	}{
		{"unknown data source", nil, map[string]any{"accessId": accessID, "dataSourceName": "NoSuchSource"}, "DataSourceNotFound"},
		{"throttled", []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 429, RetryAfter: 300, Times: -1}}, startEvent(), "Throttled"},
		{"job limit", nil, nil, "Throttled"},
		{"unavailable", []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 503, Times: -1}}, startEvent(), "SdsUnavailable"},
		{"bad version", nil, map[string]any{"accessId": accessID, "dataSourceName": coffee, "jobId": "0123456789abcdef0123456789abcdef"}, "InvalidInput"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, masterKey, func(c *sdsemu.Config) { c.Faults = tt.faults; c.MaxConcurrentJobs = 2 })
			ev := tt.event
			if ev == nil { // fill the account's job slots first
				f.mustInvoke("startdownload", startEvent())
				f.mustInvoke("startdownload", startEvent())
				ev = startEvent()
			}
			_, typ, msg := f.invoke("startdownload", ev)
			if typ != tt.want {
				t.Fatalf("error type %s (%s), want %s", typ, msg, tt.want)
			}
		})
	}
}

func TestStatusLinkReportsAnotherJob(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	first := f.mustInvoke("startdownload", startEvent())
	second := f.mustInvoke("startdownload", startEvent())
	// The docs' short status link names only the data source: it reports the newest job.
	first["statusUrl"] = f.srv.URL + "/REST/v1/dataflows/DataSourceDownload/" + coffee
	_, typ, msg := f.invoke("checkstatus", first)
	if typ != "JobAborted" || !strings.Contains(msg, decode[jobResult](t, second).JobID) {
		t.Fatalf("%s: %s, want JobAborted naming the other job", typ, msg)
	}
}

func TestPollBackoff(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.mustInvoke("startdownload", startEvent())
	if w := decode[jobResult](t, st).NextWaitSeconds; w == nil || *w != 15 {
		t.Errorf("first wait %v, want 15", st["nextWaitSeconds"])
	}
	var waits []int
	for range 8 {
		st = f.mustInvoke("checkstatus", st)
		w := decode[jobResult](t, st).NextWaitSeconds
		if w == nil {
			t.Fatalf("no nextWaitSeconds in %v", st)
		}
		waits = append(waits, *w)
	}
	want := []int{30, 60, 120, 240, 480, 900, 900, 900}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
}

func TestDeadlinePassed(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.mustInvoke("startdownload", startEvent())
	if st = f.mustInvoke("checkstatus", st); st["deadlinePassed"] != nil {
		t.Fatalf("a fresh job is past its deadline: %v", st)
	}
	st["startedAt"] = time.Now().Add(-13*time.Hour - time.Minute).UTC().Format(time.RFC3339)
	if st = f.mustInvoke("checkstatus", st); st["deadlinePassed"] != true || st["status"] != "Pending" {
		t.Fatalf("a job pending for 13 h: %v", st)
	}
	f.completeJobs()
	if st = f.mustInvoke("checkstatus", st); st["deadlinePassed"] != nil || st["status"] != "Completed" {
		t.Fatalf("a completed job reports its deadline: %v", st)
	}
}

func TestStartDownloadOfStagedVersion(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	ev := startEvent()
	ev["isStaging"] = true
	out := f.mustInvoke("startdownload", ev)
	if out["versionJobId"] != "979e9e13a3d58372148f58e6258b72b6" {
		t.Errorf("versionJobId %v, want the staged version's job id", out["versionJobId"])
	}
	// Its archive's manifest says it is the staged version, so that it is
	// never served as the published one.
	f.completeJobs()
	cp := f.mustInvoke("copytos3", f.mustInvoke("checkstatus", out))
	m, err := getObject(t, f.bucket, cp["manifestKey"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if doc := decode[map[string]any](t, m); doc["staging"] != true || doc["versionJobId"] != "979e9e13a3d58372148f58e6258b72b6" {
		t.Errorf("manifest of the staged version: %s", m)
	}
	ev["jobId"] = "979e9e13a3d58372148f58e6258b72b6"
	if _, typ, _ := f.invoke("startdownload", ev); typ != "InvalidInput" {
		t.Errorf("jobId with isStaging: %s, want InvalidInput", typ)
	}
	noStaged := map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries", "isStaging": true}
	if _, typ, msg := f.invoke("startdownload", noStaged); typ != "DataSourceNotFound" || !strings.Contains(msg, "staged") {
		t.Errorf("no staged version: %s %s", typ, msg)
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{}, true},
		{map[string]string{"SDS_BASE_URL": "http://127.0.0.1:8080"}, true},
		{map[string]string{"SDS_BASE_URL": "http://localhost:8080"}, true},
		{map[string]string{"SDS_BASE_URL": "http://spatial.virtualearth.net"}, false},
		{map[string]string{"SDS_BASE_URL": "http://10.0.0.5"}, false},
		{map[string]string{"SDS_BASE_URL": "ftp://x"}, false},
		{map[string]string{"SECRET_CACHE_TTL": "soon"}, false},
		{map[string]string{"SDS_TIMEOUT": "0s"}, false},
		{map[string]string{"POLL_FIRST_WAIT_SECONDS": "0"}, false},
		{map[string]string{"POLL_FIRST_WAIT_SECONDS": "60", "POLL_MAX_WAIT_SECONDS": "30"}, false},
		{map[string]string{"JOB_DEADLINE_SECONDS": "-1"}, false},
	}
	for _, tt := range tests {
		cfg, err := task.ConfigFromEnv(func(k string) string { return tt.env[k] })
		if (err == nil) != tt.ok {
			t.Errorf("%v: err %v, want ok=%v", tt.env, err, tt.ok)
		}
		if err == nil && len(tt.env) == 0 && (cfg.SDSBaseURL != "https://spatial.virtualearth.net" || cfg.ArchivePrefix != "sds-exports/" || cfg.JobDeadline != 13*time.Hour) {
			t.Errorf("defaults: %+v", cfg)
		}
	}
}

// The functions' results, and the manifest, as the state machines and users
// read them: decoded into types, so that a missing or mistyped field fails
// the test rather than panicking it. Pointers tell absent from zero.
type jobResult struct {
	Operation        string  `json:"operation"`
	JobID            string  `json:"jobId"`
	StatusURL        string  `json:"statusUrl"`
	Status           string  `json:"status"`
	PollCount        int     `json:"pollCount"`
	NextWaitSeconds  *int    `json:"nextWaitSeconds"`
	TotalEntityCount int64   `json:"totalEntityCount"`
	DownloadURL      *string `json:"downloadUrl"`
}

type copyResult struct {
	Bucket       string `json:"bucket"`
	Key          string `json:"key"`
	ManifestKey  string `json:"manifestKey"`
	EntityCount  int64  `json:"entityCount"`
	Bytes        int64  `json:"bytes"`
	SHA256       string `json:"sha256"`
	Reused       *bool  `json:"reused"`
	TraceContext struct {
		From string `json:"from"`
	} `json:"traceContext"`
}

type manifestDoc struct {
	SHA256      string `json:"sha256"`
	JobID       string `json:"jobId"`
	EntityCount int64  `json:"entityCount"`
}

// decode reads v (a function's result, or JSON bytes) as a T.
func decode[T any](t *testing.T, v any) T {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decoding %s as %T: %v", b, out, err)
	}
	return out
}
