package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/localrun/uptest"
)

const (
	accessID = "20181f26d9e94c81acdf9496133d4f23"
	source   = "FourthCoffeeSample"
)

// TestMakeUpWithAWSCLI starts `make up` and drives it the way the README
// shows, with the real aws CLI and only the environment it printed: a
// backup, a set-public and a delete started with start-execution and
// followed with describe-execution, and the archive listed with aws s3 ls.
// Ctrl-C stops everything.
func TestMakeUpWithAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local stack")
	}
	for _, tool := range []string{"make", "aws"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: make test installs the aws CLI pinned in requirements-dev.txt into .venv (or: pip install -r requirements-dev.txt)", tool)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}

	saved := t.TempDir()
	started := time.Now()
	up := uptest.Start(t, root, "-wait-scale 0.02 -job-duration 300ms -out "+saved)
	t.Logf("make up ready after %s", time.Since(started).Round(time.Millisecond))
	env, printed, stderr, stop := up.Env, up.Printed, up.Stderr, up.Stop
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ARCHIVE_BUCKET", "SDSEMU_URL", "SM_BACKUP", "SM_DELETE", "SM_SETPUBLIC", "SM_RESTORE", "SM_ROLLBACK", "QUERY_URL", "QUERY_KEY"} {
		if env[v] == "" {
			t.Fatalf("make up printed no %s:\n%s", v, printed)
		}
	}
	if !strings.Contains(printed, accessID+" "+source) {
		t.Errorf("make up does not list the sample data source %s %s:\n%s", accessID, source, printed)
	}
	defs, _ := filepath.Glob(filepath.Join(root, "statemachine", "*.asl.json"))
	for _, d := range defs {
		if v := MachineVar(strings.TrimSuffix(filepath.Base(d), ".asl.json")); !strings.HasPrefix(env[v], "arn:aws:states:") {
			t.Errorf("no state machine ARN in %s for %s", v, filepath.Base(d))
		}
	}

	// The aws CLI sees the printed environment and nothing of this machine's AWS set-up.
	cliEnv := []string{"AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "none")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cliEnv = append(cliEnv, kv)
		}
	}
	for k, v := range env {
		cliEnv = append(cliEnv, k+"="+v)
	}
	aws := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("aws", args...)
		cmd.Env = cliEnv
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out
	}
	// run starts an execution and follows it until it stops; it returns the
	// status, and the output of a success or the error of a failure.
	run := func(machine, input string) (status string, output map[string]any, errorName string) {
		t.Helper()
		begun := time.Now()
		var started struct{ ExecutionArn string }
		if err := json.Unmarshal(aws("stepfunctions", "start-execution", "--state-machine-arn", env[machine], "--input", input), &started); err != nil || started.ExecutionArn == "" {
			t.Fatalf("start-execution %s: %v", machine, err)
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			var d struct {
				Status, Output, Error, Cause string
			}
			if err := json.Unmarshal(aws("stepfunctions", "describe-execution", "--execution-arn", started.ExecutionArn), &d); err != nil {
				t.Fatal(err)
			}
			if d.Status != "RUNNING" {
				var out map[string]any
				if d.Status == "SUCCEEDED" {
					if err := json.Unmarshal([]byte(d.Output), &out); err != nil {
						t.Fatalf("%s output %q: %v", machine, d.Output, err)
					}
				}
				t.Logf("%s %s: %s %s after %s", machine, input, d.Status, d.Error, time.Since(begun).Round(time.Millisecond))
				return d.Status, out, d.Error
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still RUNNING after 90 s", machine)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	sample := `{"accessId":"` + accessID + `","dataSourceName":"` + source + `"`
	status, backup, _ := run("SM_BACKUP", sample+`}`)
	key, _ := backup["key"].(string)
	if status != "SUCCEEDED" || key == "" || backup["entityCount"] != float64(350) {
		t.Fatalf("backup: %s, output %v", status, backup)
	}
	// The Query API answers from the archive (the catalog is re-read every
	// 2 s), with the printed key.
	count := func(id string) string {
		t.Helper()
		u := env["QUERY_URL"] + "/REST/v1/data/" + id + "/" + source + "/FourthCoffeeShops?spatialFilter=bbox(-90,-180,90,180)&$top=3&$inlinecount=allpages&$format=json&key=" + env["QUERY_KEY"]
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var doc struct {
				D struct {
					Count string `json:"__count"`
				}
			}
			if resp.StatusCode == 200 && json.Unmarshal(body, &doc) == nil {
				return doc.D.Count
			}
			if time.Now().After(deadline) {
				t.Fatalf("query %s: %d %s", id, resp.StatusCode, body)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if n := count(accessID); n != "350" {
		t.Errorf("the Query API counts %s entities, want 350", n)
	}
	switchVersion(t, env, aws("s3", "cp", "s3://"+env["ARCHIVE_BUCKET"]+"/"+key, "-"), func() {
		if status, out, _ := run("SM_BACKUP", sample+`}`); status != "SUCCEEDED" || out["entityCount"] != float64(switchedCount) {
			t.Errorf("backup of the changed version: %s, output %v", status, out)
		}
	})
	// The staged version, backed up, answers isStaging=1; the published
	// queries still answer the published version.
	if status, out, _ := run("SM_BACKUP", sample+`,"isStaging":true}`); status != "SUCCEEDED" || out["entityCount"] != float64(362) {
		t.Errorf("backup of the staged version: %s, output %v", status, out)
	}
	if n := countStaged(t, env, "1"); n != "362" {
		t.Errorf("isStaging=1: the Query API counts %s entities, want the staged version's 362", n)
	}
	if n := countStaged(t, env, "0"); n != strconv.Itoa(switchedCount) {
		t.Errorf("isStaging=0 after the staged backup: %s entities, want %d", n, switchedCount)
	}
	// The backup converted the archive; converting it on request finds that.
	if status, out, _ := run("SM_CONVERT", `{"key":"`+key+`"}`); status != "SUCCEEDED" || out["status"] != "Reused" {
		t.Errorf("convert: %s, output %v", status, out)
	}
	if status, out, _ := run("SM_SETPUBLIC", sample+`,"public":false}`); status != "SUCCEEDED" {
		t.Errorf("set public false: %s, output %v", status, out)
	}
	if status, out, _ := run("SM_DELETE", sample+`,"confirm":"`+source+`"}`); status != "SUCCEEDED" {
		t.Errorf("delete: %s, output %v", status, out)
	}
	// The data source is gone: backing it up again fails.
	if status, _, errName := run("SM_BACKUP", sample+`}`); status != "FAILED" || errName != "DataSourceNotFound" {
		t.Errorf("backup after the delete: %s %s, want FAILED DataSourceNotFound", status, errName)
	}
	// Gone from SDS, it is still answered from its archive.
	if n := count(accessID); n != strconv.Itoa(switchedCount) {
		t.Errorf("after the delete, the Query API counts %s entities, want %d", n, switchedCount)
	}

	ls := string(aws("s3", "ls", "s3://"+env["ARCHIVE_BUCKET"], "--recursive"))
	objects := 0
	for _, line := range strings.Split(strings.TrimSpace(ls), "\n") {
		if strings.HasSuffix(line, ".xml") {
			objects++
		}
	}
	// The backup's archive, the changed version's, the staged version's,
	// and the one the delete made of the version it removed.
	if !strings.Contains(ls, key) || !strings.Contains(ls, key+".manifest.json") || objects != 4 {
		t.Errorf("aws s3 ls: want %s, its manifest and three more archives:\n%s", key, ls)
	}

	// Restore the first archive: the data source is back, under the
	// accessId the restore reports.
	status, restored, _ := run("SM_RESTORE", `{"archiveKey":"`+key+`","confirm":"`+source+`"}`)
	newID, _ := restored["accessId"].(string)
	if status != "SUCCEEDED" || newID == "" {
		t.Fatalf("restore: %s, output %v", status, restored)
	}
	if status, out, _ := run("SM_BACKUP", `{"accessId":"`+newID+`","dataSourceName":"`+source+`"}`); status != "SUCCEEDED" || out["entityCount"] != float64(350) {
		t.Errorf("backup after the restore: %s, output %v", status, out)
	}
	if n := count(newID); n != "350" {
		t.Errorf("the restored data source: the Query API counts %s entities, want 350", n)
	}

	stop()
	if !strings.Contains(stderr.String(), "stopped the emulator, moto and the functions") {
		t.Errorf("after Ctrl-C, make up did not report stopping:\n%s", stderr.String())
	}
	// The folder holds the bucket, the GeoJSON beside the XML, and stays
	// after Ctrl-C.
	base := filepath.Join(saved, filepath.FromSlash(strings.TrimSuffix(key, ".xml")))
	for _, suffix := range []string{".xml", ".xml.manifest.json", ".geojson", ".schema.json"} {
		if _, err := os.Stat(base + suffix); err != nil {
			t.Errorf("not saved after Ctrl-C: %v", err)
		} else if !strings.Contains(stderr.String(), base+suffix) {
			t.Errorf("make up did not print the path %s", base+suffix)
		}
	}
}
