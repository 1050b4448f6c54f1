package task_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/localaws"
	"github.com/sdsops/sdsops/internal/localrun"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildBootstraps compiles the real function binaries for this machine,
// with the same tags as for Lambda, once per test binary.
func buildBootstraps(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "sdsops-bootstrap-"); buildErr == nil {
			buildErr = localrun.BuildFunctions(context.Background(), "../..", binDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// functionNames lists the functions under functions/.
func functionNames(t testing.TB) []string {
	t.Helper()
	fns, err := localrun.FunctionNames("../..")
	if err != nil {
		t.Fatal(err)
	}
	return fns
}

// startBinaries registers the five bootstraps behind a local Lambda
// endpoint, configured as in the SAM template but pointing at the emulator
// and moto.
func (f *fixture) startBinaries(extraEnv map[string]string) *localaws.LambdaEndpoint {
	f.t.Helper()
	dir := buildBootstraps(f.t)
	ep := localaws.NewLambdaEndpoint(localaws.LambdaOptions{Upstream: motoEndpoint})
	if err := ep.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ep.Close() })
	env := map[string]string{
		"SDS_BASE_URL":          f.srv.URL,
		"MASTER_KEY_SECRET_ID":  f.secretID,
		"ARCHIVE_BUCKET":        f.bucket,
		"AWS_ENDPOINT_URL":      motoEndpoint,
		"AWS_ACCESS_KEY_ID":     "testing",
		"AWS_SECRET_ACCESS_KEY": "testing",
		"S3_USE_PATH_STYLE":     "true",
	}
	for k, v := range extraEnv {
		env[k] = v
	}
	for _, fn := range functionNames(f.t) {
		if err := ep.RegisterBinary(fn, localaws.BinaryFunction{Path: filepath.Join(dir, fn, "bootstrap"), Env: env, Timeout: time.Minute}); err != nil {
			f.t.Fatal(err)
		}
	}
	return ep
}

func invokeBinary(t *testing.T, ep *localaws.LambdaEndpoint, fn string, payload []byte) localaws.InvokeResult {
	t.Helper()
	res, err := ep.Invoke(context.Background(), fn, payload)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The real bootstrap binaries, run under the Lambda Runtime API, back up a
// data source end to end, report typed errors, and log JSON lines that
// carry the request id and never the key.
func TestBootstrapBinaries(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	ep := f.startBinaries(nil)

	res := invokeBinary(t, ep, "startdownload", []byte(`{"accessId":"`+accessID+`","dataSourceName":"`+coffee+`"}`))
	if res.FunctionError != "" {
		t.Fatalf("startdownload: %s: %s", res.ErrorType, res.ErrorMessage)
	}
	state := res.Payload
	f.completeJobs()
	res = invokeBinary(t, ep, "checkstatus", state)
	var st map[string]any
	json.Unmarshal(res.Payload, &st)
	if st["status"] != "Completed" {
		t.Fatalf("checkstatus: %s", res.Payload)
	}
	res = invokeBinary(t, ep, "copytos3", res.Payload)
	var out map[string]any
	if err := json.Unmarshal(res.Payload, &out); err != nil || out["entityCount"] != 350.0 || out["key"] == nil {
		t.Fatalf("copytos3: %s (%s %s)", res.Payload, res.ErrorType, res.ErrorMessage)
	}

	res = invokeBinary(t, ep, "delete", []byte(`{"accessId":"`+accessID+`","dataSourceName":"`+coffee+`","confirm":"nope"}`))
	if res.FunctionError != "Unhandled" || res.ErrorType != "InvalidInput" || !strings.Contains(res.ErrorMessage, "confirm") {
		t.Errorf("delete with a wrong confirm: %+v", res)
	}
	res = invokeBinary(t, ep, "setpublic", []byte(`not json`))
	if res.ErrorType != "InvalidInput" {
		t.Errorf("setpublic with a non-JSON event: %+v", res)
	}

	// A process's output is collected as it comes; give the last line a
	// moment to arrive.
	logs := ep.Logs()
	for deadline := time.Now().Add(3 * time.Second); countInvocationLines(logs) < 5 && time.Now().Before(deadline); logs = ep.Logs() {
		time.Sleep(20 * time.Millisecond)
	}
	var lines int
	for _, l := range logs {
		if l.Stream == "platform" {
			continue
		}
		if strings.Contains(l.Text, masterKey) {
			t.Errorf("log line shows the key: %s", l.Text)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l.Text), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", l.Text)
			continue
		}
		if rec["function"] != l.Function {
			t.Errorf("log line lacks the function name: %s", l.Text)
		}
		if rec["msg"] == "done" || rec["msg"] == "failed" {
			lines++
			if rec["requestId"] == nil {
				t.Errorf("invocation log line lacks the request id: %s", l.Text)
			}
		}
	}
	if lines < 5 {
		t.Errorf("only %d function log lines", lines)
	}
	for _, c := range ep.ColdStarts() {
		t.Logf("cold start %-13s %v", c.Function, c.Ready.Round(time.Millisecond))
	}
}

// BenchmarkColdStart measures, for each function's real bootstrap binary
// (built for this machine), the time from process start to its first
// request for work on the Runtime API: the init phase a cold Lambda pays
// before the handler runs.
func BenchmarkColdStart(b *testing.B) {
	dir := buildBootstraps(b)
	env := map[string]string{"ARCHIVE_BUCKET": "bench", "AWS_REGION": "us-east-1", "MASTER_KEY_SECRET_ID": "bench"}
	for _, fn := range functionNames(b) {
		b.Run(fn, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				ep := localaws.NewLambdaEndpoint(localaws.LambdaOptions{})
				if err := ep.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				if err := ep.RegisterBinary(fn, localaws.BinaryFunction{Path: filepath.Join(dir, fn, "bootstrap"), Env: env}); err != nil {
					b.Fatal(err)
				}
				// An event that fails validation: no AWS or SDS call is made.
				if _, err := ep.Invoke(context.Background(), fn, []byte(`[]`)); err != nil {
					b.Fatal(err)
				}
				for _, c := range ep.ColdStarts() {
					total += c.Ready
				}
				ep.Close()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-ready")
		})
	}
}

func countInvocationLines(logs []localaws.LogLine) int {
	n := 0
	for _, l := range logs {
		if strings.Contains(l.Text, `"msg":"done"`) || strings.Contains(l.Text, `"msg":"failed"`) {
			n++
		}
	}
	return n
}
