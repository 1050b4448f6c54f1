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
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
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

	// No night has run yet: status says so first, report has none.
	var st cli.Status
	r := runJSON(t, &st, cli.ExitOK, "status")
	if st.Night.Found || st.Night.ReportKey != "reports/nightly/latest.json" || st.Night.Outcome != "" {
		t.Errorf("status before any night: %+v, want no report", st.Night)
	}
	// The manual backup made the data source up to date, as a night would.
	for _, s := range st.DataSources {
		if s.DataSourceName == coffee && (s.State != "up-to-date" || s.VerifiedAt.IsZero() || s.ArchiveKey == "") {
			t.Errorf("status after backup --wait: %+v, want %s up to date with its archive", s, coffee)
		}
	}
	if r := run(t, "status"); !strings.HasPrefix(r.stdout, "last night: NO NIGHTLY REPORT (s3://"+env["SDSOPS_BUCKET"]+"/reports/nightly/latest.json)") {
		t.Errorf("status before any night does not say there is no report first:\n%s", r)
	}
	if r := run(t, "report"); r.code != cli.ExitFailed || !strings.Contains(r.stderr, "no nightly report yet") {
		t.Errorf("report before any night: %s", r)
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

	// A night whose backup of Stores-2019 SDS aborts: status and report
	// say the night failed and name Stores-2019 with its reason.
	emu := func(method, body string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, env["SDSEMU_URL"]+"/_emu/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s /_emu/faults: %v %v", method, resp, err)
		}
		resp.Body.Close()
	}
	const stores = coffeeID + "/Stores-2019"
	emu("POST", `[{"op":"createDownload","path":"Stores-2019","kind":"abort","times":-1,"message":"export failed on the service"}]`)
	sf := sfn.NewFromConfig(cfg)
	failing, err := sf.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(env["SM_NIGHTLY"]), Input: aws.String(`{"exclude":["Transit"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	failingName := executionName(aws.ToString(failing.ExecutionArn))
	run(t, "wait", aws.ToString(failing.ExecutionArn))
	emu("DELETE", "")
	// The night did not archive again what the manual backup archived.
	if n := downloadJobs(t, env["SDSEMU_URL"], coffee); n != 1 {
		t.Errorf("%d download jobs of %s after its manual backup and a night, want 1 (the backup's)", n, coffee)
	}
	runJSON(t, &st, cli.ExitPastRPO, "status")
	if n := st.Night; n.Execution != failingName || n.Outcome != "failed" || n.Counts.Failed != 1 || len(n.Failed) != 1 ||
		n.Failed[0].AccessID+"/"+n.Failed[0].DataSourceName != stores || n.Failed[0].Error == "" || !strings.Contains(n.Failed[0].Reason, "export failed on the service") {
		t.Errorf("status after a failed night: %+v, want Stores-2019 failed with its reason", n)
	}
	if r := run(t, "status"); !strings.HasPrefix(r.stdout, "last night: FAILED") || !strings.Contains(r.stdout, "  FAILED "+stores+": ") ||
		!strings.Contains(r.stdout, "export failed on the service") || !strings.Contains(r.stdout, " Failed ") {
		t.Errorf("status (text) after a failed night: %s", r)
	}
	if r := run(t, "report"); r.code != cli.ExitOK || !strings.HasPrefix(r.stdout, "night: FAILED") || !strings.Contains(r.stdout, "\nFailed ") || !strings.Contains(r.stdout, stores) ||
		!strings.Contains(r.stdout, "/"+failingName+".json") {
		t.Errorf("report of a failed night: %s", r)
	}

	// A real night that leaves Transit out, started elsewhere and
	// followed with wait: Transit is then pending for as long as its
	// published version's age, past the RPO.
	night, err := sf.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(env["SM_NIGHTLY"]), Input: aws.String(`{"exclude":["Transit"]}`)})
	if err != nil {
		t.Fatal(err)
	}
	nightName := executionName(aws.ToString(night.ExecutionArn))
	var x cli.Execution
	runJSON(t, &x, cli.ExitOK, "wait", aws.ToString(night.ExecutionArn))
	if x.Status != "SUCCEEDED" || len(x.Steps) < 2 || x.Steps[0].Name != "Discover" || x.Steps[0].Status != "succeeded" {
		t.Fatalf("wait on the night: %+v", x)
	}
	if r := run(t, "wait", aws.ToString(night.ExecutionArn)); r.code != cli.ExitOK || !strings.Contains(r.stdout, "Discover") || !strings.Contains(r.stdout, "SUCCEEDED") {
		t.Errorf("wait (text) shows no steps: %s", r)
	}

	// status: the night first, then the data sources worst first, exit 3
	// while one is past the RPO.
	runJSON(t, &st, cli.ExitPastRPO, "status")
	rep := latestReport(t, s3c, env["SDSOPS_BUCKET"])
	n := st.Night
	if !n.Found || n.Execution != nightName || n.Outcome != "succeeded" || n.Overdue || n.AgeHours > 1 || n.HeartbeatHours != 30 || len(n.Failed) != 0 {
		t.Errorf("status: night %+v, want the night %s, succeeded, just now", n, nightName)
	}
	// Transit left out; EmptyPlaces needs a key; the others archived the
	// night before but Stores-2019, archived tonight.
	if n.Counts != rep.Counts || n.Counts.Seen != 5 || n.Counts.Archived != 1 || n.Counts.UpToDate != 2 || n.Counts.Excluded != 1 || n.Counts.NeedsKey != 1 || n.Counts.Failed != 0 ||
		n.Jobs != rep.Jobs || n.RetentionEnabled {
		t.Errorf("status: night counts %+v jobs %+v, want the report's %+v %+v", n.Counts, n.Jobs, rep.Counts, rep.Jobs)
	}
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
		if s.DataSourceName == coffee && (s.LastNight == nil || s.LastNight.Status != "UpToDate" || !strings.HasSuffix(s.LastNight.Report, nightName+".json")) {
			t.Errorf("%s: last night %+v, want UpToDate in the night's report", coffee, s.LastNight)
		}
	}
	r = run(t, "status")
	lines := strings.Split(r.stdout, "\n")
	if r.code != cli.ExitPastRPO || !strings.HasPrefix(lines[0], "last night: SUCCEEDED, started ") || !strings.Contains(lines[0], nightName) ||
		!strings.Contains(lines[1], "seen 5, archived 1, carried over 0, failed 0, past the RPO at its start ") ||
		!strings.HasPrefix(lines[3], "PAST-RPO") || strings.Count(r.stdout, "\n") != 9 {
		t.Errorf("status (text): want the night in two lines, a header, one line per data source worst first and a total, exit 3: %s", r)
	}
	if !strings.Contains(r.stdout, " Archived ") || !strings.Contains(r.stdout, " UpToDate ") || !strings.Contains(r.stdout, " Excluded ") {
		t.Errorf("status (text): no data source shows last night's status: %s", r)
	}
	// A night that started longer ago than the heartbeat's window is
	// overdue (the latest report made 3 h old, then the window 2 h).
	ageReport(t, s3c, env["SDSOPS_BUCKET"], 3*time.Hour)
	runJSON(t, &st, cli.ExitPastRPO, "status")
	if n := st.Night; n.Overdue || n.AgeHours < 3 || n.AgeHours > 3.5 {
		t.Errorf("status, a night 3 h ago, heartbeat 30 h: %+v, want not overdue", n)
	}
	t.Setenv("SDSOPS_HEARTBEAT_HOURS", "2")
	runJSON(t, &st, cli.ExitPastRPO, "status")
	if n := st.Night; !n.Overdue || n.HeartbeatHours != 2 {
		t.Errorf("status, a night 3 h ago, heartbeat 2 h: %+v, want overdue", n)
	}
	if r := run(t, "status"); !strings.Contains(r.stdout, "\n  OVERDUE: no nightly run has started for more than 2.0h") {
		t.Errorf("status (text) of an overdue night does not say so:\n%s", r)
	}
	os.Unsetenv("SDSOPS_HEARTBEAT_HOURS")

	// report: the latest, by execution, by day; --json is the report as stored.
	r = run(t, "report")
	if r.code != cli.ExitOK || !strings.HasPrefix(r.stdout, "night: SUCCEEDED") || !strings.Contains(r.stdout, "Excluded  "+transit) || !strings.Contains(r.stdout, "Archived  ") {
		t.Errorf("report: %s", r)
	}
	var raw nightlyReport
	runJSON(t, &raw, cli.ExitOK, "report", "--execution", aws.ToString(night.ExecutionArn))
	if raw.Execution != nightName || raw.Counts != rep.Counts {
		t.Errorf("report --execution ARN --json: %+v, want the report of %s", raw, nightName)
	}
	runJSON(t, &raw, cli.ExitOK, "report", "--date", rep.StartedAt.UTC().Format(time.DateOnly), "--execution", nightName)
	if raw.Execution != nightName {
		t.Errorf("report --date --execution: %+v", raw)
	}
	if r := run(t, "report", "--date", rep.StartedAt.UTC().Format(time.DateOnly)); r.code != cli.ExitOK || !strings.Contains(r.stdout, nightName) {
		t.Errorf("report --date: %s", r)
	}
	for _, args := range [][]string{{"--date", "2001-02-03"}, {"--execution", "no-such-night"}, {"--date", "yesterday"}} {
		if r := run(t, append([]string{"report"}, args...)...); r.code != cli.ExitUsage || r.stderr == "" {
			t.Errorf("report %s: %s, want exit %d", strings.Join(args, " "), r, cli.ExitUsage)
		}
	}
	if r := run(t, "status", "--rpo", "1000000h"); r.code != cli.ExitOK {
		t.Errorf("status with an RPO nothing is past: %s", r)
	}

	// A second backup, by the bare name now that the inventory holds it:
	// another archive of the same version, for the restores below.
	runJSON(t, &started, cli.ExitOK, "backup", coffee, "--wait")
	if started.Execution == nil || started.Execution.Status != "SUCCEEDED" {
		t.Fatalf("backup %s --wait: %+v", coffee, started)
	}

	// archives, by the bare name.
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
	// The visibility a restore ends with: the existing data source's
	// (the sample's FourthCoffeeSample is public), unless asked.
	if !dry.Public || dry.PublicFrom != "dataSource" || !strings.Contains(strings.Join(dry.WillHappen, " "), "is public (as "+coffee+" is now; --private") {
		t.Errorf("restore --dry-run: public %v from %q, %q; want public, from the existing data source", dry.Public, dry.PublicFrom, dry.WillHappen)
	}
	runJSON(t, &dry, cli.ExitOK, "restore", coffee, "--dry-run", "--private")
	if dry.Public || dry.PublicFrom != "request" || dry.Request["public"] != false {
		t.Errorf("restore --dry-run --private: public %v from %q, request %v", dry.Public, dry.PublicFrom, dry.Request)
	}
	if r := run(t, "restore", coffee, "--dry-run", "--private"); !strings.Contains(r.stdout, "--private --confirm") {
		t.Errorf("restore --dry-run --private: the command to do it drops --private:\n%s", r.stdout)
	}
	if r := run(t, "restore", coffee, "--dry-run", "--private", "--public"); r.code != cli.ExitUsage {
		t.Errorf("restore --private --public: %s, want a usage error", r)
	}
	runJSON(t, &dry, cli.ExitOK, "restore", coffee, "--dry-run", "--archive", older.Key, "--target", "CoffeeCopy")
	if dry.Archive.Key != older.Key || dry.TargetExists || !strings.Contains(strings.Join(dry.WillHappen, " "), "NEW accessId") {
		t.Errorf("restore --dry-run --archive --target: %+v", dry)
	}
	if dry.Public || dry.PublicFrom != "none" {
		t.Errorf("restore --dry-run into a new name: public %v from %q, want private, nothing recorded", dry.Public, dry.PublicFrom)
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

// nightlyReport is the part of a night's report the test compares.
type nightlyReport struct {
	Execution string         `json:"execution"`
	StartedAt time.Time      `json:"startedAt"`
	Counts    nightly.Counts `json:"counts"`
	Jobs      nightly.JobUse `json:"jobs"`
}

// latestReport reads the latest night's report from the bucket itself.
func latestReport(t *testing.T, c *s3.Client, bucket string) nightlyReport {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(nightly.LatestReportKey(""))})
	if err != nil {
		t.Fatalf("the night wrote no report: %v", err)
	}
	defer out.Body.Close()
	var rep nightlyReport
	if err := json.NewDecoder(out.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// ageReport moves the latest report's start back by d.
func ageReport(t *testing.T, c *s3.Client, bucket string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	key := aws.String(nightly.LatestReportKey(""))
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	var rep map[string]any
	if err := json.NewDecoder(out.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	started, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rep["startedAt"]))
	if err != nil {
		t.Fatal(err)
	}
	rep["startedAt"] = started.Add(-d)
	b, _ := json.Marshal(rep)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: key, Body: bytes.NewReader(b)}); err != nil {
		t.Fatal(err)
	}
}

func executionName(arn string) string { return arn[strings.LastIndexByte(arn, ':')+1:] }

// startMakeUp starts `make up` at the repository root and returns the
// environment it printed; the test's end stops it (Ctrl-C).
// downloadJobs counts the emulator's download jobs of a data source.
func downloadJobs(t *testing.T, emuURL, name string) int {
	t.Helper()
	resp, err := http.Get(emuURL + "/_emu/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jobs []sdsemu.Job
	if err := json.NewDecoder(resp.Body).Decode(&jobs); err != nil {
		t.Fatalf("/_emu/jobs: %v", err)
	}
	n := 0
	for _, j := range jobs {
		if j.Kind == sdsemu.JobDownload && strings.EqualFold(j.DataSourceName, name) {
			n++
		}
	}
	return n
}

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
