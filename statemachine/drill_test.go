package statemachine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// metricLines keeps the Embedded Metric Format lines the functions print
// (the metrics CloudWatch would publish), and nothing else of their logs.
var metricLines = &emfLines{}

type emfLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (e *emfLines) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.partial = append(e.partial, p...)
	for {
		i := bytes.IndexByte(e.partial, '\n')
		if i < 0 {
			break
		}
		if line := string(e.partial[:i]); strings.Contains(line, `"CloudWatchMetrics"`) {
			e.lines = append(e.lines, line)
		}
		e.partial = e.partial[i+1:]
	}
	if len(e.partial) > 1<<20 {
		e.partial = nil // not a line anyone needs
	}
	return len(p), nil
}

// published returns the values of metric name in the lines printed since
// line from.
func (e *emfLines) published(name string, from int) []float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []float64
	for _, l := range e.lines[min(from, len(e.lines)):] {
		i := strings.Index(l, "{")
		var m map[string]any
		if i < 0 || json.Unmarshal([]byte(l[i:]), &m) != nil {
			continue
		}
		if v, ok := m[name].(float64); ok {
			out = append(out, v)
		}
	}
	return out
}

func (e *emfLines) count() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.lines) }

// userSnapshot describes every data source of the sample account that is
// not a scratch one: name, accessId and its versions.
func userSnapshot(t *testing.T) map[string]string {
	t.Helper()
	all, err := sdsClient(t).DataSources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range all {
		if drill.IsScratch(d.Name) {
			continue
		}
		var vs []string
		for _, v := range versions(t, d.AccessID, d.Name) {
			vs = append(vs, fmt.Sprintf("%s active=%v staging=%v public=%v updated=%s", v.JobID, v.IsActive, v.IsStaging, v.IsPublic, fmtTime(v.Updated)))
		}
		out[d.AccessID+"/"+d.Name] = strings.Join(vs, "; ")
	}
	return out
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func checkSameUsers(t *testing.T, before map[string]string) {
	t.Helper()
	after := userSnapshot(t)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("user data source %s changed by a drill:\nbefore %s\nafter  %s", k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("user data source %s appeared during a drill", k)
		}
	}
}

func scratchLeft(t *testing.T) []string {
	t.Helper()
	all, err := sdsClient(t).DataSources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range all {
		if drill.IsScratch(d.Name) {
			out = append(out, d.Name)
		}
	}
	return out
}

// TestDrillOfGoodArchive: the newest archive loads into a scratch data
// source (private, never in the catalog), the counts match, the scratch
// data source is deleted: two SDS jobs, nothing of the user's touched.
func TestDrillOfGoodArchive(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	const name = "FourthCoffeeRoasteries"
	src := archived(t, accessID, name)
	before := userSnapshot(t)
	jobsBefore := len(env.Emulator.Jobs())
	lines := metricLines.count()

	x := run(t, "drill", map[string]any{"dataSources": []map[string]any{{"accessId": accessID, "dataSourceName": name}}})
	mustSucceed(t, x)
	drills, _ := x.Output["drills"].([]any)
	if len(drills) != 1 {
		t.Fatalf("output %v", x.Output)
	}
	d := drills[0].(map[string]any)
	if d["outcome"] != catalog.DrillSucceeded || d["archiveKey"] != src["key"] || d["jobs"] != float64(drill.JobsPerDrill) {
		t.Fatalf("drill %v: want succeeded on %v with %d jobs", d, src["key"], drill.JobsPerDrill)
	}
	var scratch []sdsemu.Job
	for _, j := range env.Emulator.Jobs()[jobsBefore:] {
		if !drill.IsScratch(j.DataSourceName) {
			t.Errorf("the drill started a job on %s (%s)", j.DataSourceName, j.Kind)
		}
		scratch = append(scratch, j)
	}
	if len(scratch) != drill.JobsPerDrill || scratch[0].Kind != sdsemu.JobLoadComplete || scratch[1].Kind != sdsemu.JobDelete {
		t.Errorf("job log of the drill: %+v, want a complete load and a delete", scratch)
	}
	t.Logf("SDS jobs per drill, from the emulator's job log: %d (%s, %s)", len(scratch), scratch[0].Kind, scratch[1].Kind)
	if left := scratchLeft(t); len(left) != 0 {
		t.Errorf("scratch data sources left: %v", left)
	}
	checkSameUsers(t, before)
	if got := metricLines.published("DrillsFailed", lines); len(got) != 1 || got[0] != 0 {
		t.Errorf("DrillsFailed published %v, want [0]", got)
	}
	if got := metricLines.published("DataSourcesPastDrillAge", lines); len(got) != 1 {
		t.Errorf("DataSourcesPastDrillAge published %v, want one value", got)
	}

	// The load was private and published, and the nested executions recorded nothing.
	for _, c := range nested(t, x) {
		if countEntered(c, "RecordRestore")+countEntered(c, "RecordDeletion")+countEntered(c, "Backup") != 0 {
			t.Errorf("a nested execution recorded or backed up: %s", c.ARN)
		}
	}
	for _, r := range env.Emulator.Requests() {
		if strings.Contains(r.Path, "LoadDataSource") && strings.Contains(strings.ToLower(r.Query), "setpublic=1") {
			t.Errorf("a drill's load asked for a public data source: %s", r.Query)
		}
	}
	cat := catalog.New(env.S3, env.Bucket, "")
	rec, err := cat.Get(context.Background(), catalog.ID{AccessID: accessID, Name: name})
	if err != nil || rec.LastDrill == nil || rec.LastDrill.Outcome != catalog.DrillSucceeded || rec.LastDrill.Jobs != 2 || rec.LastDrill.SucceededAt.IsZero() {
		t.Errorf("catalog lastDrill %+v (%v)", rec.LastDrill, err)
	}
	recs, _, _ := cat.List(context.Background())
	for _, r := range recs {
		if drill.IsScratch(r.Name) {
			t.Errorf("catalog record of a scratch data source %s", r.Name)
		}
	}
}

// TestDrillOfArchiveTheLoadRefuses: an archive made before restorability
// was checked, with an entity without location: the emulator's load
// refuses it, the drill fails with the load's reasons, nothing is left.
func TestDrillOfArchiveTheLoadRefuses(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	body := withoutLocation(string(getObject(t, src["key"].(string))))
	const name = "DrillRefused"
	key := writeArchive(t, name, "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a11", []byte(body), 24, true, nil)
	// This data source exists only for this test: its archive and the failed
	// entities kept beside it go, so that the archive checks of later tests
	// see only what their own runs wrote.
	t.Cleanup(func() { removeUnder(t, strings.TrimSuffix(key, ".xml")) })
	before := userSnapshot(t)
	lines := metricLines.count()

	x := run(t, "drill", map[string]any{"dataSources": []map[string]any{{"accessId": accessID, "dataSourceName": name}}})
	mustSucceed(t, x)
	d := x.Output["drills"].([]any)[0].(map[string]any)
	// DrillsFailedAlarm watches this metric (Maximum > 0).
	if got := metricLines.published("DrillsFailed", lines); len(got) != 1 || got[0] != 1 {
		t.Errorf("DrillsFailed published %v, want [1]", got)
	}
	reasons := fmt.Sprint(d["reasons"])
	if d["outcome"] != catalog.DrillFailed || !strings.Contains(reasons, "JobAborted") || !strings.Contains(reasons, "failed validation") || d["jobs"] != 1.0 {
		t.Fatalf("drill %v: want failed with the load's reasons, after one job", d)
	}
	// The reasons name the failed entities SDS returned, kept beside the archive.
	i := strings.Index(reasons, "sds-exports/")
	failedKey := reasons[i : i+strings.Index(reasons[i:], ".failed.xml")+len(".failed.xml")]
	if failed := strings.ToLower(string(getObject(t, failedKey))); !strings.Contains(failed, "latitude") {
		t.Errorf("the failed entities %s do not say what failed:\n%.600s", failedKey, failed)
	}
	if left := scratchLeft(t); len(left) != 0 {
		t.Errorf("scratch data sources left: %v", left)
	}
	checkSameUsers(t, before)
	rec, err := catalog.New(env.S3, env.Bucket, "").Get(context.Background(), catalog.ID{AccessID: accessID, Name: name})
	if err != nil || rec.LastDrill == nil || rec.LastDrill.Outcome != catalog.DrillFailed || len(rec.LastDrill.Reasons) == 0 {
		t.Errorf("catalog lastDrill %+v (%v)", rec.LastDrill, err)
	}
}

// removeUnder deletes every object whose key starts with prefix.
func removeUnder(t *testing.T, prefix string) {
	ctx := context.Background()
	out, err := env.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(env.Bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Error(err)
		return
	}
	for _, o := range out.Contents {
		if _, err := env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: o.Key}); err != nil {
			t.Error(err)
		}
	}
}

// TestDrillCleansUpInterruptedDrill: a scratch data source an interrupted
// drill left (loaded and marked, never deleted) is deleted by the next
// run; one with the prefix but no mark is not the drills' and stays.
func TestDrillCleansUpInterruptedDrill(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	ctx := context.Background()
	cat := catalog.New(env.S3, env.Bucket, "")
	src := catalog.ID{AccessID: accessID, Name: "FourthCoffeeRoasteries"}
	archived(t, accessID, src.Name)
	left := drill.ScratchName(src, time.Now().Add(-time.Hour))
	if err := cat.MarkScratch(ctx, catalog.ScratchMark{Name: left, Source: src, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, run(t, "restore", map[string]any{"accessId": accessID, "dataSourceName": src.Name, "targetName": left, "confirm": left, "drill": true, "backupFirst": false}))
	notOurs := drill.ScratchPrefix + "someoneelses"
	mustSucceed(t, run(t, "restore", map[string]any{"accessId": accessID, "dataSourceName": src.Name, "targetName": notOurs, "confirm": notOurs, "drill": true, "backupFirst": false}))
	t.Cleanup(func() {
		if d, ok := findDataSource(t, notOurs); ok {
			mustSucceed(t, run(t, "delete", map[string]any{"accessId": d.AccessID, "dataSourceName": notOurs, "confirm": notOurs, "scratch": true, "backupFirst": false}))
		}
	})
	before := userSnapshot(t)

	x := run(t, "drill", map[string]any{"dataSources": []any{}})
	mustSucceed(t, x)
	if _, ok := findDataSource(t, left); ok {
		t.Errorf("the interrupted drill's %s is still there", left)
	}
	if _, ok := findDataSource(t, notOurs); !ok {
		t.Errorf("%s, with the prefix but no mark, was deleted", notOurs)
	}
	checkSameUsers(t, before)
	// The next run drops the mark of the data source now gone.
	mustSucceed(t, run(t, "drill", map[string]any{"dataSources": []any{}}))
	if marks, err := cat.ScratchMarks(ctx); err != nil || len(marks) != 0 {
		t.Errorf("marks left: %v (%v)", marks, err)
	}
}

// A user restore or delete may not pass for a drill's, and the reserved
// prefix is refused as a user restore's target.
func TestDrillOptionsGuarded(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	jobs := len(env.Emulator.Jobs())
	scratch := drill.ScratchPrefix + "guard"
	for _, c := range []struct {
		machine string
		input   map[string]any
	}{
		{"restore", map[string]any{"archiveKey": src["key"], "targetName": scratch, "confirm": scratch}},
		{"restore", map[string]any{"archiveKey": src["key"], "targetName": "NotScratch", "confirm": "NotScratch", "drill": true}},
		{"restore", map[string]any{"archiveKey": src["key"], "targetName": scratch, "confirm": scratch, "drill": "yes"}},
		{"delete", map[string]any{"accessId": accessID, "dataSourceName": scratchA, "confirm": scratchA, "scratch": true}},
	} {
		x := run(t, c.machine, c.input)
		if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" {
			t.Errorf("%s %v: %s %s %s", c.machine, c.input, x.Status, x.Error, x.Cause)
		}
	}
	if n := len(env.Emulator.Jobs()); n != jobs {
		t.Errorf("%d SDS jobs started by refused requests", n-jobs)
	}
	if _, ok := findDataSource(t, scratchA); !ok {
		t.Errorf("%s was deleted as a scratch data source", scratchA)
	}
}

// TestDrillSkippedWhenSlotTakenBeforeLoad: begin finds a free data source
// slot, but the account fills up before the drill's load reaches SDS,
// which refuses it with 403. The drill is skipped with the reason, as
// when begin finds no slot: no failure, no DrillsFailed = 1.
func TestDrillSkippedWhenSlotTakenBeforeLoad(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	const name = "FourthCoffeeRoasteries"
	archived(t, accessID, name)
	lines := metricLines.count()
	// The load waits a moment before SDS looks at it: time for the test
	// to take the last slots once begin has seen one free.
	if err := env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpLoad, Kind: sdsemu.FaultLatency, Latency: 1200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var fillers []string
	t.Cleanup(func() {
		for _, f := range fillers {
			if err := env.Emulator.RemoveDataSource(accessID, f); err != nil {
				t.Error(err)
			}
		}
	})
	fill := func() {
		for i := 0; ; i++ {
			f := fmt.Sprintf("SlotTaker%02d", i)
			if err := env.Emulator.AddDataSource("Fourth Coffee", sdsemu.DataSource{
				AccessID: accessID, Name: f, EntityTypeName: "Things", MasterKey: localrun.DefaultMasterKey,
				QueryKey:  "sdsemu-query-key-fourthcoffeeroasteries",
				Published: sdsemu.Version{JobID: fmt.Sprintf("%032x", 4242+i), EntityCount: 3, Updated: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
			}); err != nil {
				return // the account is full
			}
			fillers = append(fillers, f)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	arn, err := env.StartExecution(ctx, "drill", fmt.Sprintf("drill-slot-taken-%d", time.Now().UnixNano()),
		map[string]any{"dataSources": []map[string]any{{"accessId": accessID, "dataSourceName": name}}})
	if err != nil {
		t.Fatal(err)
	}
	filled := false
	x, err := env.Wait(ctx, arn, func(ev sfntypes.HistoryEvent) {
		if d := ev.StateExitedEventDetails; d != nil && aws.ToString(d.Name) == "Begin" && !filled {
			fill()
			filled = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, x)
	all, err := sdsClient(t).DataSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all); !filled || n != drill.MaxDataSources {
		t.Fatalf("the account holds %d data sources after filling it (filled: %v), want %d", n, filled, drill.MaxDataSources)
	}
	d := x.Output["drills"].([]any)[0].(map[string]any)
	reasons := fmt.Sprint(d["reasons"])
	if d["outcome"] != catalog.DrillSkipped || !strings.Contains(reasons, "no free data source slot") || !strings.Contains(reasons, "DataSourceLimit") || d["jobs"] != 0.0 {
		t.Fatalf("drill %v: want skipped for want of a data source slot, no job", d)
	}
	if got := metricLines.published("DrillsFailed", lines); len(got) != 0 {
		t.Errorf("DrillsFailed published %v, want nothing for a skipped drill", got)
	}
	if got := metricLines.published("DrillsSkipped", lines); len(got) != 1 || got[0] != 1 {
		t.Errorf("DrillsSkipped published %v, want [1]", got)
	}
	// The nested restore failed with the limit, not with a key error.
	children := nested(t, x)
	if len(children) != 1 || children[0].Error != "DataSourceLimit" {
		t.Errorf("nested executions %+v; want one restore failed with DataSourceLimit", children)
	}
	if left := scratchLeft(t); len(left) != 0 {
		t.Errorf("scratch data sources left: %v", left)
	}
	rec, err := catalog.New(env.S3, env.Bucket, "").Get(context.Background(), catalog.ID{AccessID: accessID, Name: name})
	if err != nil || rec.LastDrill == nil || rec.LastDrill.Outcome != catalog.DrillSkipped || len(rec.LastDrill.Reasons) == 0 {
		t.Errorf("catalog lastDrill %+v (%v)", rec.LastDrill, err)
	}
}
