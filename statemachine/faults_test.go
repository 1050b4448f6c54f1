package statemachine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// checkArchives asserts what every failure must leave behind: each object
// in the archive has its manifest, each manifest its object, sizes and
// sha256 match the bytes stored, and no multipart upload is left over.
func checkArchives(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	objects := map[string]bool{}
	p := s3.NewListObjectsV2Paginator(env.S3, &s3.ListObjectsV2Input{Bucket: aws.String(env.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			objects[aws.ToString(o.Key)] = true
		}
	}
	for key := range objects {
		if strings.HasPrefix(key, "catalog/") {
			continue // the catalog's records, not archives
		}
		if strings.HasSuffix(key, ".manifest.json") {
			if !objects[strings.TrimSuffix(key, ".manifest.json")] {
				t.Errorf("manifest %s has no archive", key)
			}
			continue
		}
		if base, ok := conversionOutput(key); ok {
			checkRecordedOutput(t, key, base+".xml.manifest.json")
			continue
		}
		if !objects[key+".manifest.json"] {
			t.Errorf("archive %s has no manifest: a half-written archive", key)
			continue
		}
		var m struct {
			Bytes  int64  `json:"bytes"`
			SHA256 string `json:"sha256"`
		}
		if err := json.Unmarshal(get(t, key+".manifest.json"), &m); err != nil {
			t.Errorf("manifest of %s: %v", key, err)
			continue
		}
		body := get(t, key)
		sum := sha256.Sum256(body)
		if int64(len(body)) != m.Bytes || hex.EncodeToString(sum[:]) != m.SHA256 {
			t.Errorf("archive %s: %d bytes sha256 %x, manifest says %d bytes %s", key, len(body), sum, m.Bytes, m.SHA256)
		}
	}
	up, err := env.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(env.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range up.Uploads {
		t.Errorf("multipart upload left over: %s", aws.ToString(u.Key))
	}
}

func get(t *testing.T, key string) []byte {
	t.Helper()
	out, err := env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func backupOf(name string) map[string]any {
	return map[string]any{"accessId": accessID, "dataSourceName": name}
}

// Each SDS fault: the workflow ends as it should, and S3 holds complete
// archives or nothing.
func TestFaultsDuringBackup(t *testing.T) {
	fault := func(op string, kind sdsemu.FaultKind, times int, f func(*sdsemu.Fault)) []sdsemu.Fault {
		x := sdsemu.Fault{Op: op, Kind: kind, Times: times}
		if f != nil {
			f(&x)
		}
		return []sdsemu.Fault{x}
	}
	status := func(code, retryAfter int) func(*sdsemu.Fault) {
		return func(f *sdsemu.Fault) { f.Status, f.RetryAfter = code, retryAfter }
	}
	tests := []struct {
		name    string
		machine string
		input   map[string]any
		faults  []sdsemu.Fault
		want    string // "" = succeeded, else the execution's error
	}{
		{"503 x2 on create", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpCreateDownload, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		// A backup that names no version first looks up the published one.
		{"503 x2 on information before create", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpInfo, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		{"503 x2 on status", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadStatus, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		{"503 x2 on data", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadData, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		{"500 x6 on data", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadData, sdsemu.FaultStatus, 6, status(500, 0)), ""},
		{"503 x2 on delete", "delete", map[string]any{"accessId": accessID, "dataSourceName": scratchA, "confirm": scratchA, "backupFirst": false},
			fault(sdsemu.OpDelete, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		{"503 x2 on information", "delete", map[string]any{"accessId": accessID, "dataSourceName": scratchC, "confirm": scratchC, "backupFirst": false},
			fault(sdsemu.OpInfo, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		{"503 x2 on set public", "setpublic", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "public": false},
			fault(sdsemu.OpSetPublic, sdsemu.FaultStatus, 2, status(503, 0)), ""},
		// More 503s than the client's own attempts: the state machine
		// repeats the idempotent set public as well.
		{"503 x6 on set public", "setpublic", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "public": true},
			fault(sdsemu.OpSetPublic, sdsemu.FaultStatus, 6, status(503, 0)), ""},
		{"503 x3 on job list", "setpublic", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "public": true},
			fault(sdsemu.OpListJobs, sdsemu.FaultStatus, 3, status(503, 0)), ""},
		{"429 Retry-After 1 on status", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadStatus, sdsemu.FaultStatus, 1, status(429, 1)), ""},
		{"429 Retry-After 300 on create", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpCreateDownload, sdsemu.FaultStatus, 3, status(429, 300)), ""},
		{"latency above the timeout", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadStatus, sdsemu.FaultLatency, 1, func(f *sdsemu.Fault) { f.Latency = 3 * time.Second }), ""},
		{"expired output link", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadData, sdsemu.FaultStatus, -1, status(404, 0)), "DataSourceNotFound"},
		{"truncated once", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadData, sdsemu.FaultTruncate, 1, func(f *sdsemu.Fault) { f.Bytes = 50000 }), ""},
		{"reset once", "backup", backupOf(bigSample), fault(sdsemu.OpDownloadData, sdsemu.FaultReset, 1, func(f *sdsemu.Fault) { f.Bytes = 9 << 20 }), ""},
		{"longer than announced once", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadData, sdsemu.FaultOverlong, 1, func(f *sdsemu.Fault) { f.Bytes = 50000 }), ""},
		{"truncated always", "backup", backupOf(bigSample), fault(sdsemu.OpDownloadData, sdsemu.FaultTruncate, -1, func(f *sdsemu.Fault) { f.Bytes = 12 << 20 }), "SdsUnavailable"},
		{"longer than announced always", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadData, sdsemu.FaultOverlong, -1, func(f *sdsemu.Fault) { f.Bytes = 50000 }), "IntegrityError"},
		{"503 always on status", "backup", backupOf("FourthCoffeeSample"), fault(sdsemu.OpDownloadStatus, sdsemu.FaultStatus, -1, status(503, 0)), "SdsUnavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setTiming(t, sdsemu.Timing{})
			if err := env.Emulator.AddFault(tt.faults...); err != nil {
				t.Fatal(err)
			}
			x := run(t, tt.machine, tt.input)
			if tt.want == "" && x.Status != sfntypes.ExecutionStatusSucceeded {
				t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
			}
			if tt.want != "" && (x.Status != sfntypes.ExecutionStatusFailed || x.Error != tt.want) {
				t.Fatalf("status %s error %q (%s), want FAILED %s", x.Status, x.Error, x.Cause, tt.want)
			}
			if tt.faults[0].Times > 0 {
				if left := env.Emulator.Faults(); len(left) != 0 {
					t.Errorf("the fault did not fire as often as armed: %+v left", left)
				}
			}
			if tt.want == "" && tt.machine == "backup" && !objectExists(t, x.Output["key"].(string)) {
				t.Error("no archive")
			}
			checkArchives(t)
		})
	}
}

// S3 failing in the middle of a multipart upload: retried by the SDK and
// the state machine when it passes, a failure with nothing left behind
// when it does not.
func TestS3FailsMidUpload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int64
		want  string
	}{{"three failures", 3, ""}, {"always", 1 << 30, "ArchiveUnavailable"}} {
		t.Run(tc.name, func(t *testing.T) {
			setTiming(t, sdsemu.Timing{})
			var failed atomic.Int64
			env.Stack.Lambda.SetUpstreamFault(func(r *http.Request) (int, string) {
				if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" && failed.Add(1) <= tc.fails {
					return http.StatusInternalServerError, "InternalError"
				}
				return 0, ""
			})
			defer env.Stack.Lambda.SetUpstreamFault(nil)
			x := run(t, "backup", backupOf(bigSample))
			if tc.want == "" && x.Status != sfntypes.ExecutionStatusSucceeded {
				t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
			}
			if tc.want != "" && x.Error != tc.want {
				t.Fatalf("status %s error %q, want %s", x.Status, x.Error, tc.want)
			}
			if failed.Load() == 0 {
				t.Fatal("the fault never fired: the export did not take the multipart path")
			}
			checkArchives(t)
		})
	}
}

// copytos3 running into its timeout mid-upload stops itself a little
// before Lambda would kill it: it reports a typed error and aborts its
// upload, and the state machine's retry archives the export.
//
// Nothing here races the machine's speed: the stalled part is held until
// the handler itself gives it up, however long that takes, and only that
// first attempt has the short timeout; the retry gets the usual one. What
// is left timed is the product's own margin (Lambda's kill comes 2 s after
// the handler's deadline) and reaching the second part within 8 s.
func TestCopyRunsOutOfTime(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	const short = 10 * time.Second // the handler's deadline: 2 s (its margin) earlier
	if err := env.SetFunctionTimeout("copytos3", short); err != nil {
		t.Fatal(err)
	}
	defer env.SetFunctionTimeout("copytos3", 5*time.Minute)
	var stalled, gaveUp atomic.Bool
	env.Stack.Lambda.SetUpstreamFault(func(r *http.Request) (int, string) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" && stalled.CompareAndSwap(false, true) {
			// The attempt in flight keeps its short timeout; the retry gets the usual one.
			if err := env.Stack.Lambda.SetTimeout("copytos3", 5*time.Minute); err != nil {
				t.Error(err)
			}
			// Take the part (the server notices a closed connection only
			// once the body is read), then answer nothing until the caller hangs up.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done(): // the handler gave the upload up
				gaveUp.Store(true)
			case <-time.After(2 * short): // Lambda has killed it by now
			}
			return http.StatusInternalServerError, "InternalError" // to no one
		}
		return 0, ""
	})
	defer env.Stack.Lambda.SetUpstreamFault(nil)
	x := run(t, "backup", backupOf(bigSample))
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	if !stalled.Load() || !gaveUp.Load() {
		t.Errorf("second part stalled %v, given up by the handler %v; want both", stalled.Load(), gaveUp.Load())
	}
	if errs := failedTasks(x); len(errs) != 1 || errs[0] != "FunctionTimeout" {
		t.Errorf("failed attempts %v, want one FunctionTimeout, reported before Lambda's own timeout", errs)
	}
	checkArchives(t)
}

// copytos3 killed mid-upload (a crash: nothing can clean up) is retried by
// the state machine; the retry waits for the dead attempt's claim to lapse
// (at most archive.DefaultClaimLease), aborts its upload and archives once.
func TestCopyKilledMidUpload(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	var killed atomic.Bool
	env.Stack.Lambda.SetUpstreamFault(func(r *http.Request) (int, string) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" && killed.CompareAndSwap(false, true) {
			if n, err := env.Stack.Lambda.Kill("copytos3"); n == 0 || err != nil {
				t.Errorf("killing copytos3 mid-upload: %d processes, %v", n, err)
			}
			return http.StatusInternalServerError, "InternalError"
		}
		return 0, ""
	})
	defer env.Stack.Lambda.SetUpstreamFault(nil)
	x := run(t, "backup", backupOf(bigSample))
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	if errs := failedTasks(x); len(errs) != 1 || errs[0] != "Runtime.ExitError" {
		t.Errorf("failed attempts %v, want one Runtime.ExitError", errs)
	}
	checkArchives(t)
}

// failedTasks lists the error types of the failed task attempts.
func failedTasks(x *localrun.Execution) []string {
	var errs []string
	for _, ev := range x.History {
		if d := ev.LambdaFunctionFailedEventDetails; d != nil {
			errs = append(errs, aws.ToString(d.Error))
		}
		if d := ev.TaskFailedEventDetails; d != nil {
			errs = append(errs, aws.ToString(d.Error))
		}
	}
	return errs
}

// The same backup started twice at once: two complete archives of two
// download jobs, nothing corrupt; and the same job's copy run twice at
// once (a duplicate delivery) gives one archive.
func TestSameBackupTwiceAtOnce(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	var wg sync.WaitGroup
	xs := make([]*localrun.Execution, 2)
	for i := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xs[i] = run(t, "backup", backupOf("FourthCoffeeSample"))
		}()
	}
	wg.Wait()
	for _, x := range xs {
		if x.Status != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
		}
	}
	if xs[0].Output["key"] == xs[1].Output["key"] || xs[0].Output["sha256"] != xs[1].Output["sha256"] {
		t.Errorf("two jobs, keys %v and %v, sha256 %v and %v: want distinct keys, same content", xs[0].Output["key"], xs[1].Output["key"], xs[0].Output["sha256"], xs[1].Output["sha256"])
	}

	// Replay the copy of the first job twice concurrently.
	in := map[string]any{}
	for k, v := range xs[0].Output {
		if k != "bucket" && k != "key" && k != "manifestKey" && k != "bytes" && k != "sha256" && k != "entityCount" && k != "reused" {
			in[k] = v
		}
	}
	payload, _ := json.Marshal(in)
	results := make([]map[string]any, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := env.Stack.Lambda.Invoke(context.Background(), "copytos3", payload)
			if err != nil || res.FunctionError != "" {
				t.Errorf("copy %d: %v %s %s", i, err, res.ErrorType, res.ErrorMessage)
				return
			}
			json.Unmarshal(res.Payload, &results[i])
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r != nil && (r["key"] != xs[0].Output["key"] || r["sha256"] != xs[0].Output["sha256"]) {
			t.Errorf("a repeated copy gave %v", r)
		}
	}
	checkArchives(t)
}

// Two copies of the same job at once, before any archive exists (a
// duplicate delivery), through the real binaries: one archive results;
// the copy that loses the race waits for it and returns it (reused).
func TestSameCopyTwiceAtOnce(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	ctx := context.Background()
	invoke := func(fn string, payload []byte) (map[string]any, string) {
		res, err := env.Stack.Lambda.Invoke(ctx, fn, payload)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.Unmarshal(res.Payload, &out)
		return out, res.ErrorType
	}
	ev, _ := json.Marshal(backupOf(bigSample))
	st, typ := invoke("startdownload", ev)
	if typ != "" {
		t.Fatal(typ)
	}
	for st["status"] != "Completed" {
		b, _ := json.Marshal(st)
		if st, typ = invoke("checkstatus", b); typ != "" {
			t.Fatal(typ)
		}
	}
	payload, _ := json.Marshal(st)
	var wg sync.WaitGroup
	results := make([]map[string]any, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, typ := invoke("copytos3", payload)
			if typ != "" {
				t.Errorf("copy %d failed with %s", i, typ)
			}
			results[i] = out
		}()
	}
	wg.Wait()
	if results[0]["key"] != results[1]["key"] || results[0]["sha256"] != results[1]["sha256"] || results[0]["key"] == nil {
		t.Errorf("copies disagree: %v / %v", results[0], results[1])
	}
	if results[0]["reused"] == results[1]["reused"] {
		t.Errorf("reused %v and %v: want exactly one new archive", results[0]["reused"], results[1]["reused"])
	}
	checkArchives(t)
}

// Secrets: a wrong key fails with Unauthorized; once the secret is fixed
// the next run succeeds (the refused key is dropped from the cache); a
// deleted or malformed secret fails with SecretNotFound before any SDS
// request.
func TestSecretFaults(t *testing.T) {
	ctx := context.Background()
	setTiming(t, sdsemu.Timing{})
	put := func(name, value string) {
		t.Helper()
		if _, err := env.Secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	withSecret := func(name string) map[string]any {
		in := backupOf("FourthCoffeeSample")
		in["masterKeySecretId"] = name
		return in
	}

	put("sdsops/rotating", "an-old-key-that-was-rotated")
	if x := run(t, "backup", withSecret("sdsops/rotating")); x.Error != "Unauthorized" {
		t.Fatalf("with a stale key: %s %s", x.Status, x.Error)
	}
	if _, err := env.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("sdsops/rotating"), SecretString: aws.String(localrun.DefaultMasterKey)}); err != nil {
		t.Fatal(err)
	}
	if x := run(t, "backup", withSecret("sdsops/rotating")); x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("after rotation: %s %s %s", x.Status, x.Error, x.Cause)
	}

	put("sdsops/deleted", localrun.DefaultMasterKey)
	env.Secrets.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("sdsops/deleted")})
	put("sdsops/malformed", `{"masterKey": `)
	for _, name := range []string{"sdsops/deleted", "sdsops/malformed", "sdsops/never-created"} {
		env.Emulator.ResetRequests()
		x := run(t, "backup", withSecret(name))
		if x.Error != "SecretNotFound" || !strings.Contains(x.Cause, name) {
			t.Errorf("%s: %s %s %s", name, x.Status, x.Error, x.Cause)
		}
		if n := len(env.Emulator.Requests()); n != 0 {
			t.Errorf("%s: %d SDS requests without a key", name, n)
		}
	}
	checkArchives(t)
}
