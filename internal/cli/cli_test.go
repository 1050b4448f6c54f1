package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sdsops/sdsops/internal/cli"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/localrun/uptest"
	"github.com/sdsops/sdsops/internal/sds"
)

const (
	coffeeID = "20181f26d9e94c81acdf9496133d4f23"
	coffee   = "FourthCoffeeSample"
	transit  = "6b1c9e2f04d84a7f9a3e5d7c8b2f1e40/Transit"
)

// result is one run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Run(ctx, append([]string{"--interval", "100ms"}, args...), cli.IO{Stdout: &out, Stderr: &errb, Getenv: os.Getenv})
	return result{code, out.String(), errb.String()}
}

// runJSON runs a command with --json, wants exit code want and decodes
// its output into v.
func runJSON(t *testing.T, v any, want int, args ...string) result {
	t.Helper()
	r := run(t, append(args, "--json")...)
	if r.code != want {
		t.Fatalf("sdsops %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	reflect.ValueOf(v).Elem().SetZero() // nothing left from an earlier answer
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("sdsops %s --json: output is not the JSON expected: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	return r
}

// TestCLIAgainstMakeUp runs every verb against one `make up`, as an
// operator would with the environment it prints.
func TestCLIAgainstMakeUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local stack")
	}
	env := startMakeUp(t)
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	sdsc, err := sds.New(env["SDSEMU_URL"], localrun.DefaultMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	// state is everything a dry run must leave alone: every object of the
	// bucket (key, size, ETag) and SDS's data sources, versions and jobs.
	state := func() string {
		t.Helper()
		var b strings.Builder
		p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(env["SDSOPS_BUCKET"])})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Contents {
				fmt.Fprintf(&b, "%s %d %s\n", aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag))
			}
		}
		list, err := sdsc.DataSources(ctx)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := sdsc.ListJobs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions, err := sdsc.DataSourceInfo(ctx, sds.DataSource{AccessID: coffeeID, Name: coffee}, true)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal([]any{list, jobs, versions})
		return b.String() + string(j)
	}

	// An unknown data source, a malformed name, an unknown command.
	for _, args := range [][]string{{"archives", "NoSuchSource"}, {"backup", "a/b/c"}, {"frobnicate"}, {"restore"}} {
		r := run(t, args...)
		if r.code != cli.ExitUsage || r.stderr == "" {
			t.Errorf("sdsops %s: want exit %d and an error, got %s", strings.Join(args, " "), cli.ExitUsage, r)
		}
	}
	if r := run(t, "archives", "NoSuchSource"); !strings.Contains(r.stderr, `unknown data source "NoSuchSource"`) {
		t.Errorf("unknown data source: the error does not name it: %s", r.stderr)
	}

	// backup, by accessId/name (the inventory is empty yet), followed.
	var started cli.Started
	runJSON(t, &started, cli.ExitOK, "backup", coffeeID+"/"+coffee, "--wait")
	if started.Execution == nil || started.Execution.Status != "SUCCEEDED" || !strings.Contains(started.ExecutionArn, ":execution:") {
		t.Fatalf("backup --wait: %+v", started)
	}
	if len(started.Execution.Steps) == 0 || started.Execution.Steps[0].Name == "" {
		t.Errorf("backup --wait shows no steps: %+v", started.Execution)
	}

	// The next night, planned: nothing recorded, nothing started.
	before := state()
	var plan cli.NightPlan
	runJSON(t, &plan, cli.ExitOK, "night", "--dry-run")
	if after := state(); after != before {
		t.Errorf("night --dry-run changed the bucket or SDS:\nbefore %s\nafter  %s", before, after)
	}
	published := ""
	for _, it := range plan.Plan.Items {
		if it.DataSourceName == coffee {
			published = it.Version
		}
	}
	if plan.Seen != 5 || len(plan.Plan.Items) != 5 || published == "" || plan.Plan.Budget == 0 {
		t.Fatalf("night --dry-run: %+v", plan)
	}
	if r := run(t, "night"); r.code != cli.ExitUsage {
		t.Errorf("night without --dry-run: want exit %d, got %s", cli.ExitUsage, r)
	}

	// A real night that leaves Transit out, started elsewhere and
	// followed with wait: Transit is then pending for as long as its
	// published version's age, past the RPO.
	sf := sfn.NewFromConfig(cfg)
	night, err := sf.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(env["SM_NIGHTLY"]), Input: aws.String(`{"exclude":["Transit"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	var x cli.Execution
	runJSON(t, &x, cli.ExitOK, "wait", aws.ToString(night.ExecutionArn))
	if x.Status != "SUCCEEDED" || len(x.Steps) < 2 || x.Steps[0].Name != "Discover" || x.Steps[0].Status != "succeeded" {
		t.Fatalf("wait on the night: %+v", x)
	}
	if r := run(t, "wait", aws.ToString(night.ExecutionArn)); r.code != cli.ExitOK || !strings.Contains(r.stdout, "Discover") || !strings.Contains(r.stdout, "SUCCEEDED") {
		t.Errorf("wait (text) shows no steps: %s", r)
	}

	// status: worst first, exit 3 while a data source is past the RPO.
	var st cli.Status
	runJSON(t, &st, cli.ExitPastRPO, "status")
	if st.PastRPO == 0 || len(st.DataSources) != 5 || !st.DataSources[0].PastRPO {
		t.Fatalf("status: %+v", st)
	}
	seenOK := false
	for _, s := range st.DataSources {
		if s.PastRPO && seenOK {
			t.Errorf("status is not worst first: %s past the RPO after a data source that is not", s.DataSourceName)
		}
		seenOK = seenOK || !s.PastRPO
		if s.AccessID+"/"+s.DataSourceName == transit && (!s.PastRPO || s.State != "pending") {
			t.Errorf("Transit: %+v, want pending past the RPO", s)
		}
		if s.DataSourceName == coffee && (s.State != "up-to-date" || s.VerifiedAt.IsZero() || s.ArchiveKey == "") {
			t.Errorf("%s: %+v, want up to date with its archive", coffee, s)
		}
	}
	r := run(t, "status")
	if r.code != cli.ExitPastRPO || !strings.HasPrefix(strings.Split(r.stdout, "\n")[1], "PAST-RPO") || strings.Count(r.stdout, "\n") != 7 {
		t.Errorf("status (text): want a header, one line per data source worst first and a total, exit 3: %s", r)
	}
	if r := run(t, "status", "--rpo", "1000000h"); r.code != cli.ExitOK {
		t.Errorf("status with an RPO nothing is past: %s", r)
	}

	// archives, by the bare name now that the inventory holds it.
	var arch cli.Archives
	runJSON(t, &arch, cli.ExitOK, "archives", coffee)
	if len(arch.Archives) < 2 || !arch.Archives[0].Verified || arch.Archives[0].Restorable == nil || !arch.Archives[0].Converted || arch.Archives[0].Bytes == 0 {
		t.Fatalf("archives: %+v", arch)
	}
	newest, older := arch.Archives[0], arch.Archives[len(arch.Archives)-1]

	// restore --dry-run: the archive, its checks and what would happen,
	// and nothing changed.
	before = state()
	var dry cli.RestoreDryRun
	runJSON(t, &dry, cli.ExitOK, "restore", coffee, "--dry-run")
	if dry.Archive.Key != newest.Key || !dry.Archive.Verified || !dry.TargetExists || dry.TargetAccessID != coffeeID || !dry.BackupFirst || len(dry.WillHappen) == 0 {
		t.Errorf("restore --dry-run: %+v, want the newest archive %s into the existing data source", dry, newest.Key)
	}
	runJSON(t, &dry, cli.ExitOK, "restore", coffee, "--dry-run", "--archive", older.Key, "--target", "CoffeeCopy")
	if dry.Archive.Key != older.Key || dry.TargetExists || !strings.Contains(strings.Join(dry.WillHappen, " "), "NEW accessId") {
		t.Errorf("restore --dry-run --archive --target: %+v", dry)
	}
	if r := run(t, "restore", coffee, "--dry-run"); r.code != cli.ExitOK || !strings.Contains(r.stdout, "verified    yes") || !strings.Contains(r.stdout, "nothing was started") {
		t.Errorf("restore --dry-run (text): %s", r)
	}
	// A wrong key, a key of another data source, no confirmation: refused.
	wrong := strings.TrimSuffix(newest.Key, filepath.Base(newest.Key)) + "0123456789abcdef0123456789abcdef.xml"
	if r := run(t, "restore", coffee, "--dry-run", "--archive", wrong); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "no archive manifest") {
		t.Errorf("restore --dry-run with a wrong key: %s", r)
	}
	if r := run(t, "restore", coffee, "--archive", strings.Replace(newest.Key, coffee, "FourthCoffeeRoasteries", 1), "--confirm", coffee); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "not of") {
		t.Errorf("restore with another data source's key: %s", r)
	}
	if r := run(t, "restore", coffee, "--archive", newest.Key); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--confirm "+coffee) {
		t.Errorf("restore without --confirm: %s", r)
	}
	if after := state(); after != before {
		t.Errorf("restore dry runs and refusals changed the bucket or SDS:\nbefore %s\nafter  %s", before, after)
	}

	// restore for real, of the older archive; then roll back to the
	// version it replaced.
	runJSON(t, &started, cli.ExitOK, "restore", coffee, "--archive", older.Key, "--confirm", coffee, "--wait")
	var out map[string]any
	if started.Execution == nil || started.Execution.Status != "SUCCEEDED" || json.Unmarshal(started.Execution.Output, &out) != nil || out["archiveKey"] != older.Key || out["published"] != true {
		t.Fatalf("restore --archive --wait: %+v", started)
	}
	if r := run(t, "rollback", coffee, published); r.code != cli.ExitUsage {
		t.Errorf("rollback without --confirm: %s", r)
	}
	runJSON(t, &started, cli.ExitOK, "rollback", coffee, published, "--confirm", coffee, "--wait")
	if started.Execution == nil || started.Execution.Status != "SUCCEEDED" || json.Unmarshal(started.Execution.Output, &out) != nil || out["versionJobId"] != published {
		t.Fatalf("rollback --wait: %+v", started)
	}

	// convert: a data source's archives, one key, a prefix (followed
	// afterwards with wait).
	runJSON(t, &started, cli.ExitOK, "convert", coffee, "--wait")
	if started.Execution == nil || started.Execution.Status != "SUCCEEDED" {
		t.Errorf("convert NAME --wait: %+v", started)
	}
	runJSON(t, &started, cli.ExitOK, "convert", "--key", newest.Key, "--wait")
	if started.Execution == nil || started.Execution.Status != "SUCCEEDED" {
		t.Errorf("convert --key --wait: %+v", started)
	}
	runJSON(t, &started, cli.ExitOK, "convert", "--prefix", "sds-exports/")
	if started.Execution != nil || started.ExecutionArn == "" {
		t.Fatalf("convert --prefix: %+v", started)
	}
	runJSON(t, &x, cli.ExitOK, "wait", started.ExecutionArn)
	if x.Status != "SUCCEEDED" {
		t.Errorf("wait on convert --prefix: %+v", x)
	}
	if r := run(t, "convert", coffee, "--key", newest.Key); r.code != cli.ExitUsage {
		t.Errorf("convert with a name and a key: %s", r)
	}

	// A failing execution: exit 1, with the error; an unknown one: exit 2.
	runJSON(t, &started, cli.ExitFailed, "backup", "6b1c9e2f04d84a7f9a3e5d7c8b2f1e40/EmptyPlaces", "--wait")
	if started.Execution == nil || started.Execution.Status != "FAILED" || started.Execution.Error == "" {
		t.Errorf("a failing backup --wait: %+v", started)
	}
	if r := run(t, "wait", strings.Replace(aws.ToString(night.ExecutionArn), "sdsops-nightly:", "sdsops-nightly:nope", 1)); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "ExecutionDoesNotExist") {
		t.Errorf("wait on an unknown execution: %s", r)
	}

	// The routes the CLI does not use answer as on AWS too: visibility
	// starts setpublic, a delete without its confirmation is refused, an
	// unsigned request is refused.
	api := func(method, path, body string, sign bool) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, env["SDSOPS_API"]+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if sign {
			creds, err := cfg.Credentials.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(body))
			if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", cfg.Region, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	ds := "/datasources/" + coffeeID + "/" + coffee
	code, ans := api("PUT", ds+"/visibility", `{"public":false}`, true)
	arn, _ := ans["executionArn"].(string)
	if code != 202 || !strings.HasPrefix(fmt.Sprint(ans["statusPath"]), "/v1/executions/"+arn) {
		t.Fatalf("PUT visibility: %d %v", code, ans)
	}
	runJSON(t, &x, cli.ExitOK, "wait", arn)
	if x.Status != "SUCCEEDED" || !strings.Contains(x.StateMachineArn, "setpublic") {
		t.Errorf("visibility: %+v", x)
	}
	if code, ans := api("DELETE", ds, `{"confirm":"SomethingElse"}`, true); code != 400 || ans["error"] != "InvalidRequest" {
		t.Errorf("DELETE with a wrong confirmation: %d %v", code, ans)
	}
	if code, _ := api("GET", "/datasources", "", false); code != 403 {
		t.Errorf("an unsigned request: %d, want 403", code)
	}

	// Requests are signed: other credentials are refused.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	if r := run(t, "status"); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "signature") {
		t.Errorf("status with the wrong secret key: %s", r)
	}
}

// startMakeUp starts `make up` at the repository root and returns the
// environment it printed; the test's end stops it (Ctrl-C).
func startMakeUp(t *testing.T) map[string]string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	up := uptest.Start(t, root, "-wait-scale 0.02 -job-duration 300ms -out "+t.TempDir())
	for _, k := range []string{"SDSOPS_API", "SDSOPS_BUCKET", "SDSOPS_DISCOVER_FUNCTION", "SDSOPS_RESTORE_FUNCTION", "SDSOPS_CONVERT_MACHINE", "SM_NIGHTLY", "SDSEMU_URL"} {
		if up.Env[k] == "" {
			t.Fatalf("make up printed no %s:\n%s", k, up.Printed)
		}
	}
	return up.Env
}
