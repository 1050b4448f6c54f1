package accounttest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// drillRun is one run of the drill state machine: each drill's result.
func (a *account) drillRun(name string) []map[string]any {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	x, err := a.env.Run(ctx, "drill", name, map[string]any{})
	if err != nil {
		a.t.Fatal(err)
	}
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		a.t.Fatalf("%s: %s %s: %s", name, x.Status, x.Error, x.Cause)
	}
	var out []map[string]any
	list, _ := x.Output["drills"].([]any)
	for _, d := range list {
		out = append(out, d.(map[string]any))
	}
	return out
}

// users snapshots every data source that is not a drill's scratch one.
func (a *account) users() map[string]sdsemu.DataSource {
	out := map[string]sdsemu.DataSource{}
	for _, name := range a.names {
		if d, ok := a.env.Emulator.DataSource(accessID, name); ok {
			out[name] = d
		}
	}
	return out
}

func (a *account) checkUntouched(before map[string]sdsemu.DataSource) {
	a.t.Helper()
	after := a.users()
	for name, b := range before {
		d, ok := after[name]
		if !ok || d.Published.JobID != b.Published.JobID || d.IsPublic != b.IsPublic || len(d.Prior) != len(b.Prior) || (d.Staged == nil) != (b.Staged == nil) {
			a.t.Errorf("user data source %s changed by a drill: before %+v, after %+v (present %v)", name, b, d, ok)
		}
	}
}

// scratchJobs are the emulator's jobs on scratch data sources.
func (a *account) scratchJobs() []sdsemu.Job {
	var out []sdsemu.Job
	for _, j := range a.env.Emulator.Jobs() {
		if drill.IsScratch(j.DataSourceName) {
			out = append(out, j)
		}
	}
	return out
}

func outcomes(drills []map[string]any) map[string]int {
	n := map[string]int{}
	for _, d := range drills {
		n[fmt.Sprint(d["outcome"])]++
	}
	return n
}

// TestDrillsAndNightsWithinBudget: drills and nightly runs share one job
// budget and the account's 25 data source slots. Replaying the emulator's
// job log shows the budget was never exceeded, a drill skipped for want of
// budget or slot is reported as such and costs nothing, and no user data
// source is touched.
func TestDrillsAndNightsWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("nested executions over an emulated account")
	}
	const budget, capacity, sources = 40, 3, 24
	a := startWith(t, sources, budget, capacity, func(c *sdsemu.Config, env map[string]string) {
		c.MaxDataSources = drill.MaxDataSources
		env["DRILL_PER_RUN"] = "3"
	})
	ctx := context.Background()

	// Night 1: every data source but Locked (a key of its own) is archived.
	n1 := a.run(fmt.Sprintf("night-1-%d", time.Now().UnixNano()))
	if got := count(n1.status, "Archived"); got != sources-1 {
		t.Fatalf("night 1 archived %d, want %d: %v", got, sources-1, n1.status)
	}

	// Drill run 1: three drills, each a load and a delete, nothing left.
	before := a.users()
	d1 := a.drillRun(fmt.Sprintf("drill-1-%d", time.Now().UnixNano()))
	if o := outcomes(d1); o[catalog.DrillSucceeded] != 3 || len(d1) != 3 {
		t.Fatalf("drill run 1: %v", d1)
	}
	for _, d := range d1 {
		if d["jobs"] != float64(drill.JobsPerDrill) {
			t.Errorf("drill of %v: %v SDS jobs, want %d", d["dataSourceName"], d["jobs"], drill.JobsPerDrill)
		}
	}
	jobs := a.scratchJobs()
	kinds := map[sdsemu.JobKind]int{}
	for _, j := range jobs {
		kinds[j.Kind]++
	}
	t.Logf("drill run 1: %d SDS jobs on scratch data sources for 3 drills: %v", len(jobs), kinds)
	if len(jobs) != 3*drill.JobsPerDrill || kinds[sdsemu.JobDelete] != 3 {
		t.Errorf("job log: %d jobs on scratch data sources (%v), want 3 loads and 3 deletes", len(jobs), kinds)
	}
	a.checkUntouched(before)
	a.checkNoScratch()

	// Night 2: 8 changed; the drills' jobs count in the night's window.
	changed := []string{"Src001", "Src002", "Src003", "Src004", "Src005", "Src006", "Src007", "Src008"}
	a.change(changed, nil)
	n2 := a.run(fmt.Sprintf("night-2-%d", time.Now().UnixNano()))
	t.Logf("night 2: archived %d, carried over %d", count(n2.status, "Archived"), n2.carriedOver)

	// Drill run 2: room for one drill only; the others are skipped for the budget.
	before = a.users()
	d2 := a.drillRun(fmt.Sprintf("drill-2-%d", time.Now().UnixNano()))
	used := len(a.env.Emulator.Jobs())
	t.Logf("drill run 2: %v; %d SDS jobs in all since the start", outcomes(d2), used)
	if o := outcomes(d2); o[catalog.DrillFailed] != 0 || o[catalog.DrillSkipped] == 0 {
		t.Errorf("drill run 2: want some skipped for the budget, none failed: %v", d2)
	}
	for _, d := range d2 {
		if d["outcome"] == catalog.DrillSkipped && !strings.Contains(fmt.Sprint(d["reasons"]), "job budget") {
			t.Errorf("skipped drill without the budget's reason: %v", d)
		}
	}
	a.checkUntouched(before)
	a.checkNoScratch()

	// The account is full: a drill run is skipped for want of a slot.
	a.change(nil, []string{"Full"})
	before = a.users()
	jobsBefore := len(a.env.Emulator.Jobs())
	d3 := a.drillRun(fmt.Sprintf("drill-3-%d", time.Now().UnixNano()))
	if o := outcomes(d3); o[catalog.DrillSkipped] != len(d3) || len(d3) == 0 {
		t.Errorf("drill run 3 with no free slot: %v", d3)
	}
	for _, d := range d3 {
		if !strings.Contains(fmt.Sprint(d["reasons"]), "no free data source slot") {
			t.Errorf("skipped drill without the slot's reason: %v", d)
		}
	}
	if n := len(a.env.Emulator.Jobs()); n != jobsBefore {
		t.Errorf("a skipped drill started %d SDS jobs", n-jobsBefore)
	}
	a.checkUntouched(before)
	rec, err := a.store.Get(ctx, catalog.ID{AccessID: accessID, Name: fmt.Sprint(d3[0]["dataSourceName"])})
	if err != nil || rec.LastDrill == nil || rec.LastDrill.Outcome != catalog.DrillSkipped {
		t.Errorf("catalog: last drill %+v (%v), want skipped", rec.LastDrill, err)
	}

	// Replay the job log: no 24 hours ever held more than the budget.
	all := a.env.Emulator.Jobs()
	slices.SortFunc(all, func(x, y sdsemu.Job) int { return x.Created.Compare(y.Created) })
	for i, j := range all {
		inWindow := 0
		for _, k := range all[:i+1] {
			if j.Created.Sub(k.Created) < 24*time.Hour {
				inWindow++
			}
		}
		if inWindow > budget {
			t.Fatalf("job %s (%s %s): %d jobs in the 24 hours before it, budget %d", j.ID, j.Kind, j.DataSourceName, inWindow, budget)
		}
	}
	t.Logf("replayed %d SDS jobs: within the budget of %d", len(all), budget)
}

// checkNoScratch: no scratch data source and no scratch mark is left.
func (a *account) checkNoScratch() {
	a.t.Helper()
	c := a.env.Emulator
	for _, j := range c.Jobs() {
		if drill.IsScratch(j.DataSourceName) {
			if _, left := c.DataSource(j.AccessID, j.DataSourceName); left {
				a.t.Errorf("scratch data source %s/%s left behind", j.AccessID, j.DataSourceName)
			}
		}
	}
	marks, err := a.store.ScratchMarks(context.Background())
	if err != nil || len(marks) != 0 {
		a.t.Errorf("scratch marks left: %v (%v)", marks, err)
	}
}
