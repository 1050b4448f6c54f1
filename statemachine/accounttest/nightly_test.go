// Package accounttest runs the nightly state machine over an emulated
// account for several nights: real state machines in moto, nested backup
// executions, the real function binaries and the SDS emulator.
package accounttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/testenv"
)

const (
	accessID     = "4a1c0e7f9b2d4c6e8f0a1b2c3d4e5f60"
	lockedName   = "Locked"
	lockedKey    = "sdsemu-master-key-locked"
	lockedSecret = "sdsops/locked-master-key"
	overrides    = "sdsops/key-overrides"
	// A night is 25 hours after the one before: the catalog's clock is
	// moved back by that much between runs (see ageCatalog).
	nightGap = 25 * time.Hour
)

// account is the emulated account and everything the nights change.
type account struct {
	t        testing.TB
	env      *localrun.Env
	store    *catalog.Store
	versions int
	names    []string
	budget   int
	cap      int
	queue    string // an SQS queue subscribed to the alarm topic
	sqs      *sqs.Client
}

func (a *account) version(updated time.Time) sdsemu.Version {
	a.versions++
	return sdsemu.Version{JobID: fmt.Sprintf("%032x", 0xa000+a.versions), EntityCount: 3 + a.versions%7, Updated: updated}
}

func (a *account) source(name string, updated time.Time) sdsemu.DataSource {
	d := sdsemu.DataSource{AccessID: accessID, Name: name, EntityTypeName: "Places", MasterKey: localrun.DefaultMasterKey,
		QueryKey: "sdsemu-query-key-night", Published: a.version(updated)}
	if name == lockedName {
		d.MasterKey = lockedKey
	}
	return d
}

// start brings up the stack with n data sources; Locked (a master key of
// its own) is the oldest, so night 1 tries it.
func start(t testing.TB, n, budget, concurrency int) *account {
	t.Helper()
	return startWith(t, n, budget, concurrency, nil)
}

// startWith is start with changes to the emulator's configuration and the
// functions' environment.
func startWith(t testing.TB, n, budget, concurrency int, tweak func(*sdsemu.Config, map[string]string)) *account {
	t.Helper()
	a := &account{t: t, budget: budget, cap: concurrency}
	base := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	acct := sdsemu.Account{Name: "Night", Keys: []string{"sdsemu-account-key-night"}}
	acct.DataSources = append(acct.DataSources, a.source(lockedName, base))
	a.names = append(a.names, lockedName)
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("Src%03d", i)
		a.names = append(a.names, name)
		acct.DataSources = append(acct.DataSources, a.source(name, base.Add(time.Duration(i)*time.Hour)))
	}
	cfg := sdsemu.Config{Accounts: []sdsemu.Account{acct}, MaxDataSources: 1000,
		// The cap: a job started beyond it gets 429, which the test forbids.
		MaxConcurrentJobs: concurrency,
		// The 24 h budget is checked from the emulator's job log (the nights
		// are compressed into minutes of real time).
		MaxJobsPerDay: 100000}
	fenv := map[string]string{
		"SDS_TIMEOUT": "5s", "JOB_BUDGET": strconv.Itoa(budget), "JOB_CONCURRENCY": strconv.Itoa(concurrency),
		"KEY_OVERRIDES_SECRET_ID": overrides, "NIGHTLY_EXCLUDE": "*/Ignored*",
	}
	if tweak != nil {
		tweak(&cfg, fenv)
	}
	env, err := localrun.Start(context.Background(), localrun.Options{RepoRoot: "../..", Emulator: cfg, SkipWaits: true, FunctionEnv: fenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	a.env = env
	a.store = catalog.New(env.S3, env.Bucket, "")
	ctx := context.Background()
	for name, value := range map[string]string{overrides: "{}", lockedSecret: lockedKey} {
		if _, err := env.Secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	// The alarm topic's mail, as a queue: SNS delivers each summary to it.
	a.sqs = sqs.NewFromConfig(env.AWS)
	q, err := a.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("alarm-mail")})
	if err != nil {
		t.Fatal(err)
	}
	a.queue = aws.ToString(q.QueueUrl)
	qa, err := a.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sns.NewFromConfig(env.AWS).Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(env.AlarmTopic), Protocol: aws.String("sqs"),
		Endpoint: aws.String(qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}); err != nil {
		t.Fatal(err)
	}
	return a
}

// summary is one message the alarm topic delivered.
type summary struct {
	Subject           string
	Message           string
	MessageAttributes map[string]struct{ Value string }
}

// summaries drains the queue subscribed to the alarm topic.
func (a *account) summaries() []summary {
	a.t.Helper()
	var out []summary
	for {
		got, err := a.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &a.queue, MaxNumberOfMessages: 10})
		if err != nil {
			a.t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			return out
		}
		for _, m := range got.Messages {
			var s summary
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &s); err != nil {
				a.t.Fatalf("summary %q: %v", aws.ToString(m.Body), err)
			}
			out = append(out, s)
			if _, err := a.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: &a.queue, ReceiptHandle: m.ReceiptHandle}); err != nil {
				a.t.Fatal(err)
			}
		}
	}
}

// report reads the night's report the run's output names, and checks
// that latest.json is the same report.
func (a *account) report(x *localrun.Execution) (nightly.Report, []byte) {
	a.t.Helper()
	ctx := context.Background()
	out, err := a.env.Describe(ctx, x.ARN)
	if err != nil {
		a.t.Fatal(err)
	}
	key := nightly.ReportKey("", aws.ToTime(out.StartDate), aws.ToString(out.Name))
	body := a.object(key)
	if latest := a.object(nightly.LatestReportKey("")); !bytes.Equal(latest, body) {
		a.t.Errorf("%s: latest.json is not the night's report", aws.ToString(out.Name))
	}
	var rep nightly.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		a.t.Fatalf("report %s: %v", key, err)
	}
	return rep, body
}

func (a *account) object(key string) []byte {
	a.t.Helper()
	o, err := a.env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &a.env.Bucket, Key: &key})
	if err != nil {
		a.t.Fatalf("%s: %v", key, err)
	}
	defer o.Body.Close()
	b, err := io.ReadAll(o.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return b
}

// change publishes a new version of each named data source and creates
// the new ones.
func (a *account) change(changed []string, created []string) {
	now := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, name := range changed {
		if err := a.env.Emulator.PublishVersion(accessID, name, a.version(now)); err != nil {
			a.t.Fatal(err)
		}
	}
	for _, name := range created {
		a.names = append(a.names, name)
		if err := a.env.Emulator.AddDataSource("Night", a.source(name, now)); err != nil {
			a.t.Fatal(err)
		}
	}
}

// ageCatalog moves every time in the catalog back by d: the next run sees
// the previous nights' download jobs as d older, as it would d later.
func (a *account) ageCatalog(d time.Duration) {
	ctx := context.Background()
	recs, _, err := a.store.List(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	back := func(t *time.Time) {
		if !t.IsZero() {
			*t = t.Add(-d)
		}
	}
	var written []catalog.Record
	for _, r := range recs {
		w, err := a.store.UpdateFrom(ctx, r, func(r *catalog.Record) error {
			for i := range r.Jobs {
				back(&r.Jobs[i].Created)
			}
			back(&r.PendingSince)
			back(&r.VerifiedAt)
			back(&r.FirstSeen)
			back(&r.LastSeen)
			back(&r.LastErrorAt)
			return nil
		})
		if err != nil {
			a.t.Fatal(err)
		}
		written = append(written, w)
	}
	if err := a.store.UpdateIndex(ctx, written...); err != nil {
		a.t.Fatal(err)
	}
}

// night is what one run did.
type night struct {
	x           *localrun.Execution
	status      map[string]string // data source → result status
	jobs        []sdsemu.Job      // download jobs the run started
	seen        int
	upToDate    int
	carriedOver int
	transitions int // state entries in the run and its nested executions
	largest     int // events of the largest history among them
	children    int
	report      nightly.Report
	reportJSON  []byte
	summaries   []summary // what the alarm topic delivered
}

func (a *account) run(name string) night {
	return a.runWith(name, map[string]any{}, sfntypes.ExecutionStatusSucceeded)
}

// runWith runs a night with input and expects it to end with status.
func (a *account) runWith(name string, input map[string]any, status sfntypes.ExecutionStatus) night {
	a.t.Helper()
	before := len(a.downloads())
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	x, err := a.env.Run(ctx, "nightly", name, input)
	if err != nil {
		a.t.Fatal(err)
	}
	n := night{x: x, status: map[string]string{}, jobs: a.downloads()[before:], largest: len(x.History)}
	if x.Status != status {
		a.t.Fatalf("%s: %s %s: %s", name, x.Status, x.Error, x.Cause)
	}
	n.report, n.reportJSON = a.report(x)
	n.summaries = a.summaries()
	// Every run puts a heartbeat, whatever it does next.
	if a.heartbeats(started) == 0 {
		a.t.Errorf("%s: no heartbeat", name)
	}
	if v, ok := x.Output["seen"].(float64); ok {
		n.seen = int(v)
	}
	if v, ok := x.Output["upToDate"].(float64); ok {
		n.upToDate = int(v)
	}
	if v, ok := x.Output["carriedOver"].(float64); ok {
		n.carriedOver = int(v)
	}
	results, _ := x.Output["results"].([]any)
	for _, r := range results {
		m, _ := r.(map[string]any)
		n.status[fmt.Sprint(m["dataSourceName"])] = fmt.Sprint(m["status"])
	}
	n.transitions = entered(x)
	for _, ev := range x.History {
		d := ev.TaskSubmittedEventDetails
		if d == nil || aws.ToString(d.ResourceType) != "states" {
			continue
		}
		var started struct{ ExecutionArn string }
		if json.Unmarshal([]byte(aws.ToString(d.Output)), &started) != nil || started.ExecutionArn == "" {
			continue
		}
		child, err := a.env.Wait(ctx, started.ExecutionArn, nil)
		if err != nil {
			a.t.Fatal(err)
		}
		n.children++
		n.transitions += entered(child)
		n.largest = max(n.largest, len(child.History))
	}
	return n
}

func entered(x *localrun.Execution) int {
	c := 0
	for _, ev := range x.History {
		if ev.StateEnteredEventDetails != nil {
			c++
		}
	}
	return c
}

func (a *account) downloads() []sdsemu.Job {
	var out []sdsemu.Job
	for _, j := range a.env.Emulator.Jobs() {
		if j.Kind == sdsemu.JobDownload {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(x, y sdsemu.Job) int { return x.Created.Compare(y.Created) })
	return out
}

func count(status map[string]string, want string) int {
	c := 0
	for _, s := range status {
		if s == want {
			c++
		}
	}
	return c
}

// checkCatalog: every data source the run archived has its published
// version verified in the catalog, with its archive in S3.
func (a *account) checkCatalog(n night) {
	ctx := context.Background()
	for name, st := range n.status {
		if st != "Archived" {
			continue
		}
		ds, ok := a.env.Emulator.DataSource(accessID, name)
		if !ok {
			a.t.Fatalf("%s archived but not in the account", name)
		}
		rec, err := a.store.Get(ctx, catalog.ID{AccessID: accessID, Name: name})
		if err != nil {
			a.t.Fatal(err)
		}
		if !strings.EqualFold(rec.VerifiedVersion, ds.Published.JobID) || rec.ArchiveKey == "" || len(rec.SHA256) != 64 {
			a.t.Errorf("%s: catalog says version %q archive %q, published is %s", name, rec.VerifiedVersion, rec.ArchiveKey, ds.Published.JobID)
		}
		if want := strings.TrimSuffix(rec.ArchiveKey, ".xml") + ".geojson"; rec.GeoJSONKey != want {
			a.t.Errorf("%s: catalog names GeoJSON %q, want %q beside the archive", name, rec.GeoJSONKey, want)
		}
	}
}

// inventory invokes the inventory function as the aws CLI would.
func (a *account) inventory(payload string) map[string]any {
	out, err := a.env.Stack.Lambda.Invoke(context.Background(), "inventory", []byte(payload))
	if err != nil {
		a.t.Fatal(err)
	}
	if out.FunctionError != "" {
		a.t.Fatalf("inventory %s: %s", out.FunctionError, out.Payload)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Payload, &m); err != nil {
		a.t.Fatal(err)
	}
	return m
}

func TestNightsWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("several nights of nested executions")
	}
	const budget, capacity = 5, 3
	a := start(t, 12, budget, capacity)
	// Per night: changed data sources and new ones, before the run.
	type plan struct {
		changed, created []string
		fixKey           bool
		throttle         bool // the job limits answer 429 all night
		archived         int
		needsKey         []string
	}
	nights := []plan{
		// 12 new; Locked (oldest) is refused: no job, recorded as needing a key.
		{archived: 4, needsKey: []string{lockedName}},
		// 7 left, 2 of the archived ones changed, 1 new, 1 ignored by the
		// filter: 10 pending, Locked not retried.
		{changed: []string{"Src001", "Src002"}, created: []string{"Src012", "IgnoredOne"}, archived: 5},
		// The override names Locked's key: it is tried again, first.
		{fixKey: true, archived: 5},
		{archived: 1},
		// Nothing changed: no SDS job at all.
		{archived: 0},
		// 4 changed, but SDS answers 429: the first backups stop the night,
		// the rest are skipped; the run does not fail, no job is used.
		{changed: []string{"Src003", "Src004", "Src005", "Src006"}, throttle: true, archived: 0},
		// The 4 are carried over and archived the next night.
		{archived: 4},
	}
	for i, p := range nights {
		if i > 0 {
			a.ageCatalog(nightGap)
		}
		a.change(p.changed, p.created)
		if p.fixKey {
			if _, err := a.env.Secrets.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(overrides), SecretString: aws.String(`{"` + accessID + `/locked":"` + lockedSecret + `"}`)}); err != nil {
				t.Fatal(err)
			}
		}
		a.env.Emulator.ClearFaults()
		if p.throttle {
			if err := a.env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 429, Times: -1}); err != nil {
				t.Fatal(err)
			}
		}
		n := a.run(fmt.Sprintf("night-%d-%d", i+1, time.Now().UnixNano()))
		archived := count(n.status, "Archived")
		t.Logf("night %d: seen %d, archived %d, carried over %d, jobs %d, transitions %d, largest history %d events",
			i+1, n.seen, archived, n.carriedOver, len(n.jobs), n.transitions, n.largest)
		if archived != p.archived {
			t.Errorf("night %d: %d archived, want %d (%v)", i+1, archived, p.archived, n.status)
		}
		// Jobs used equal the data sources archived: nothing unchanged, nothing twice.
		if len(n.jobs) != archived {
			t.Errorf("night %d: %d SDS download jobs for %d archives", i+1, len(n.jobs), archived)
		}
		if len(n.jobs) > budget {
			t.Errorf("night %d: %d jobs, budget %d", i+1, len(n.jobs), budget)
		}
		for name, st := range n.status {
			switch {
			case p.throttle && (st == "Throttled" || st == "Skipped"):
			case st != "Archived" && !slices.Contains(p.needsKey, name):
				t.Errorf("night %d: %s %s", i+1, name, st)
			}
		}
		if p.throttle && (count(n.status, "Skipped") == 0 || count(n.status, "Throttled") > capacity) {
			t.Errorf("night %d: after a 429 the remaining items must be skipped, at most %d throttled: %v", i+1, capacity, n.status)
		}
		for _, name := range p.needsKey {
			if n.status[name] != "NeedsKey" {
				t.Errorf("night %d: %s is %q, want NeedsKey", i+1, name, n.status[name])
			}
			rec, err := a.store.Get(context.Background(), catalog.ID{AccessID: accessID, Name: name})
			if err != nil || !rec.NeedsKey {
				t.Errorf("night %d: %s not recorded as needing a key: %v %+v", i+1, name, err, rec)
			}
		}
		if _, ignored := n.status["IgnoredOne"]; ignored {
			t.Errorf("night %d: the excluded data source was backed up", i+1)
		}
		a.checkCatalog(n)
		a.checkReport(n, nightly.OutcomeSucceeded)
		if n.report.Counts.Archived != archived || n.report.Counts.UpToDate != n.upToDate {
			t.Errorf("night %d: the report counts %d archived, %d up to date; the run %d, %d", i+1, n.report.Counts.Archived, n.report.Counts.UpToDate, archived, n.upToDate)
		}
		if i == 1 {
			t.Logf("night 2's report:\n%s", n.reportJSON)
			t.Logf("night 2's summary: %s\n%s", n.summaries[0].Subject, n.summaries[0].Message)
		}
	}
	// A visibility change and a delete reach the catalog.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for machine, input := range map[string]map[string]any{
		"setpublic": {"accessId": accessID, "dataSourceName": "Src002", "public": false},
		"delete":    {"accessId": accessID, "dataSourceName": "Src011", "confirm": "Src011"},
	} {
		x, err := a.env.Run(ctx, machine, fmt.Sprintf("%s-%d", machine, time.Now().UnixNano()), input)
		if err != nil {
			t.Fatal(err)
		}
		if x.Status != sfntypes.ExecutionStatusSucceeded || x.Output["catalogError"] != nil {
			t.Fatalf("%s: %s %s %s %v", machine, x.Status, x.Error, x.Cause, x.Output["catalogError"])
		}
	}
	if rec, err := a.store.Get(ctx, catalog.ID{AccessID: accessID, Name: "Src002"}); err != nil || rec.Visibility != catalog.Private {
		t.Errorf("after setpublic false: visibility %q (%v)", rec.Visibility, err)
	}
	// Every data source but the excluded and the deleted one is up to date; the inventory says so.
	inv := a.inventory(`{}`)
	list, _ := inv["dataSources"].([]any)
	states := map[string]string{}
	for _, e := range list {
		m := e.(map[string]any)
		states[fmt.Sprint(m["name"])] = fmt.Sprint(m["state"])
	}
	for _, name := range a.names {
		want := "up-to-date"
		switch name {
		case "IgnoredOne":
			want = "pending"
		case "Src011":
			want = "deleted"
		}
		if states[name] != want {
			t.Errorf("inventory: %s is %q, want %q", name, states[name], want)
		}
	}
	// A backup fails (its job aborted, the message echoing the key): the
	// run fails, the report and the summary name the data source and why.
	a.ageCatalog(nightGap)
	a.change([]string{"Src007"}, nil)
	if err := a.env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpCreateDownload, Path: "Src007", Kind: sdsemu.FaultAbort,
		Message: "export failed, see https://example.invalid/x?key=" + localrun.DefaultMasterKey}); err != nil {
		t.Fatal(err)
	}
	n := a.runWith(fmt.Sprintf("night-fail-%d", time.Now().UnixNano()), map[string]any{}, sfntypes.ExecutionStatusFailed)
	a.checkReport(n, nightly.OutcomeFailed)
	if e := n.report.DataSources[0]; e.DataSourceName != "Src007" || e.Status != "Failed" || e.Error != "JobAborted" || !strings.Contains(e.Reason, "export failed") {
		t.Errorf("failed night: the report's first data source is %+v, want Src007 failed with JobAborted and its message", e)
	}
	if sm := n.summaries[0]; !strings.Contains(sm.Subject, "FAILED") || !strings.Contains(sm.Message, "Src007 JobAborted") {
		t.Errorf("failed night: summary %q does not name the failure:\n%s", sm.Subject, sm.Message)
	}
	t.Logf("failed night's summary: %s\n%s", n.summaries[0].Subject, n.summaries[0].Message)
	// Discovery fails (a malformed pattern in the run's input): the report
	// and the summary say so, and the run fails with discover's error.
	n = a.runWith(fmt.Sprintf("night-nodiscover-%d", time.Now().UnixNano()), map[string]any{"include": []string{"[bad"}}, sfntypes.ExecutionStatusFailed)
	if n.x.Error != "InvalidInput" || n.report.RunError == nil || n.report.RunError.Error != "InvalidInput" || n.report.Outcome != nightly.OutcomeFailed ||
		len(n.summaries) != 1 || n.summaries[0].MessageAttributes["outcome"].Value != nightly.OutcomeFailed {
		t.Errorf("discovery failed: run %s %s, report %+v, summaries %+v", n.x.Error, n.x.Cause, n.report.RunError, n.summaries)
	}

	arch := a.inventory(`{"accessId":"` + accessID + `","dataSourceName":"Src001"}`)
	if got, _ := arch["archives"].([]any); len(got) != 2 {
		t.Errorf("inventory of Src001: %d archives, want 2 (both versions): %v", len(got), arch)
	} else if first := got[0].(map[string]any); !strings.Contains(fmt.Sprint(first["versionJobId"]), fmt.Sprint(mustPublished(t, a, "Src001"))) {
		t.Errorf("inventory of Src001: newest archive is of %v, want the published %s", first["versionJobId"], mustPublished(t, a, "Src001"))
	}
}

// checkReport: the night's report agrees with what the run did, lists
// every data source seen once (with a reason wherever one was not simply
// archived or up to date), holds no key, and exactly one summary was
// published, saying the same.
func (a *account) checkReport(n night, outcome string) {
	a.t.Helper()
	r, name := n.report, n.x.ARN
	if r.Outcome != outcome || r.Schema != nightly.ReportSchema || !strings.HasSuffix(name, ":"+r.Execution) {
		a.t.Errorf("%s: report outcome %q schema %d execution %q, want %q", name, r.Outcome, r.Schema, r.Execution, outcome)
	}
	if n.x.Status != sfntypes.ExecutionStatusSucceeded {
		n.seen = r.Counts.Seen // a failed run has no output to compare with
	}
	if r.Counts.Seen != n.seen || r.Jobs.StartedTonight != len(n.jobs) || r.Jobs.Budget != a.budget || r.Jobs.ConcurrencyCap != a.cap {
		a.t.Errorf("%s: report counts seen %d, jobs %+v; the run saw %d, started %d jobs (budget %d, cap %d)", name, r.Counts.Seen, r.Jobs, n.seen, len(n.jobs), a.budget, a.cap)
	}
	listed := map[string]nightly.Entry{}
	for _, e := range r.DataSources {
		if _, dup := listed[e.DataSourceName]; dup {
			a.t.Errorf("%s: %s listed twice", name, e.DataSourceName)
		}
		listed[e.DataSourceName] = e
		switch e.Status {
		case "Archived", nightly.ReportUpToDate:
		default:
			if e.Reason == "" {
				a.t.Errorf("%s: %s is %s without a reason", name, e.DataSourceName, e.Status)
			}
		}
	}
	// Each data source's record says what the night did with it.
	recs, _, err := a.store.List(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	for _, rec := range recs {
		e, ok := listed[rec.Name]
		if !ok {
			continue
		}
		if ln := rec.LastNight; ln == nil || ln.Status != e.Status || ln.Report != nightly.ReportKey("", r.StartedAt, r.Execution) || ln.Reason != e.Reason {
			a.t.Errorf("%s: %s's lastNight %+v, the report says %+v", name, rec.Name, ln, e)
		}
	}
	if len(listed) != n.seen {
		a.t.Errorf("%s: the report lists %d data sources, the run saw %d", name, len(listed), n.seen)
	}
	for ds, st := range n.status {
		if listed[ds].Status != st {
			a.t.Errorf("%s: the report says %s is %q, the run %q", name, ds, listed[ds].Status, st)
		}
	}
	if want := n.carriedOver + count(n.status, "Throttled") + count(n.status, "Skipped"); r.Counts.CarriedOver != want {
		a.t.Errorf("%s: report carries over %d, want %d", name, r.Counts.CarriedOver, want)
	}
	if len(n.summaries) != 1 {
		a.t.Fatalf("%s: %d summaries published, want 1", name, len(n.summaries))
	}
	sm := n.summaries[0]
	key := nightly.ReportKey("", r.StartedAt, r.Execution)
	if sm.MessageAttributes["outcome"].Value != outcome || !strings.Contains(sm.Message, key) || !strings.Contains(sm.Subject, r.StartedAt.Format(time.DateOnly)) {
		a.t.Errorf("%s: summary %q (outcome %q) does not say %s or name %s:\n%s", name, sm.Subject, sm.MessageAttributes["outcome"].Value, outcome, key, sm.Message)
	}
	for _, k := range []string{localrun.DefaultMasterKey, lockedKey} {
		if bytes.Contains(n.reportJSON, []byte(k)) || strings.Contains(sm.Message, k) {
			a.t.Errorf("%s: a master key in the report or its summary", name)
		}
	}
}

// heartbeats counts the heartbeats discover printed since: Embedded
// Metric Format lines that CloudWatch turns into the data points of the
// metric the heartbeat alarm watches.
func (a *account) heartbeats(since time.Time) int {
	n := 0
	for _, l := range a.env.Stack.Lambda.Logs() {
		if l.Function != "discover" || l.Stream != "stdout" {
			continue
		}
		var emf struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
				}
			} `json:"_aws"`
			Stack     string
			Heartbeat *float64 `json:"NightlyHeartbeat"`
		}
		if json.Unmarshal([]byte(l.Text), &emf) != nil || emf.Heartbeat == nil || len(emf.AWS.CloudWatchMetrics) != 1 {
			continue
		}
		m := emf.AWS.CloudWatchMetrics[0]
		if m.Namespace == nightly.MetricNamespace && slices.Equal(slices.Concat(m.Dimensions...), []string{nightly.DimensionStack}) &&
			emf.Stack == nightly.DefaultStackName && *emf.Heartbeat == 1 && !time.UnixMilli(emf.AWS.Timestamp).Before(since.Truncate(time.Millisecond)) {
			n++
		}
	}
	return n
}

func mustPublished(t *testing.T, a *account, name string) string {
	ds, ok := a.env.Emulator.DataSource(accessID, name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	return ds.Published.JobID
}

func TestMain(m *testing.M) { testenv.Main(m) }
