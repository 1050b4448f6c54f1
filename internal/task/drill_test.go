package task_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/task"
)

// drillEvent runs one step of the drill function.
func drillStep(t *testing.T, svc *task.Service, ev map[string]any, into any) {
	t.Helper()
	raw, _ := json.Marshal(ev)
	out, err := svc.Drill(context.Background(), raw)
	if err != nil {
		t.Fatalf("drill %v: %v", ev["action"], err)
	}
	roundTrip(t, out, into)
}

// metricValue is the value of name in the last EMF line holding it.
func metricValue(t *testing.T, buf *bytes.Buffer, name string) (float64, bool) {
	t.Helper()
	var v float64
	found := false
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if x, ok := m[name].(float64); ok {
			v, found = x, true
		}
	}
	return v, found
}

func (f *fixture) addScratch(name string) {
	f.t.Helper()
	err := f.emu.AddDataSource("Fourth Coffee", sdsemu.DataSource{AccessID: strings.Repeat("5", 32), Name: name, EntityTypeName: "Things",
		MasterKey: masterKey, QueryKey: "sdsemu-query-key-fourthcoffeesample",
		Published: sdsemu.Version{JobID: strings.Repeat("6", 32), EntityCount: 3, Updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		f.t.Fatal(err)
	}
}

// A drill's steps outside the state machine: begin marks the scratch data
// source, finish judges, records lastDrill and publishes DrillsFailed; a
// skipped drill is recorded as skipped; plan finds a leftover by its mark
// and never takes an unmarked data source with the prefix.
func TestDrillSteps(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	var metrics bytes.Buffer
	svc, store := f.nightlyService(&metrics)
	ctx := context.Background()
	id := catalog.ID{AccessID: accessID, Name: coffee}
	if _, err := store.Update(ctx, id, func(r *catalog.Record) error {
		r.Verified(catalog.Archive{Version: strings.Repeat("a", 32), At: time.Now(), ArchiveKey: "sds-exports/x.xml", SHA256: strings.Repeat("0", 64), EntityCount: 350})
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var plan task.DrillPlanResult
	drillStep(t, svc, map[string]any{"action": "plan"}, &plan)
	if len(plan.Items) != 1 || plan.Items[0].DataSourceName != coffee || len(plan.Leftovers) != 0 {
		t.Fatalf("plan %+v: want %s to drill, no leftover", plan, coffee)
	}
	if v, ok := metricValue(t, &metrics, task.MetricPastDrillAge); !ok || v != 0 {
		t.Errorf("%s = %v (published %v), want 0 for a data source first seen now", task.MetricPastDrillAge, v, ok)
	}

	var begin task.DrillBeginResult
	drillStep(t, svc, map[string]any{"action": "begin", "accessId": accessID, "dataSourceName": coffee}, &begin)
	if !begin.Start || !drill.IsScratch(begin.ScratchName) {
		t.Fatalf("begin %+v", begin)
	}
	if _, err := f.getObject(store.ScratchMarkKey(begin.ScratchName)); err != nil {
		t.Fatalf("no mark of %s: %v", begin.ScratchName, err)
	}

	// The load aborted: no scratch data source; the drill failed with the reasons.
	var res task.DrillResult
	drillStep(t, svc, map[string]any{"action": "finish", "item": map[string]any{
		"accessId": accessID, "dataSourceName": coffee, "begin": begin,
		"failure": map[string]any{"Error": "JobAborted", "Cause": "entity 7: no Latitude and Longitude, no geography"},
		"scratch": map[string]any{"found": false}}}, &res)
	if res.Outcome != catalog.DrillFailed || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "entity 7") {
		t.Errorf("finish %+v: want failed with the load's reason", res)
	}
	if v, ok := metricValue(t, &metrics, task.MetricDrillsFailed); !ok || v != 1 {
		t.Errorf("%s = %v (published %v), want 1", task.MetricDrillsFailed, v, ok)
	}
	rec, err := store.Get(ctx, id)
	if err != nil || rec.LastDrill == nil || rec.LastDrill.Outcome != catalog.DrillFailed || rec.LastDrill.Reasons[0] != res.Reasons[0] {
		t.Errorf("catalog lastDrill %+v (%v)", rec.LastDrill, err)
	}
	if _, err := f.getObject(store.ScratchMarkKey(begin.ScratchName)); err == nil {
		t.Error("the mark stays though the scratch data source does not exist")
	}
	idx, _ := store.Index(ctx)
	if len(idx.DataSources) != 1 || idx.DataSources[0].LastDrill == nil {
		t.Errorf("the index (the inventory's source) lacks the last drill: %+v", idx.DataSources)
	}

	// A load that processed fewer entities than the archive holds fails;
	// the scratch data source still there is reported and keeps its mark.
	drillStep(t, svc, map[string]any{"action": "begin", "accessId": accessID, "dataSourceName": coffee}, &begin)
	f.addScratch(begin.ScratchName)
	drillStep(t, svc, map[string]any{"action": "finish", "item": map[string]any{
		"accessId": accessID, "dataSourceName": coffee, "begin": begin,
		"restore":       map[string]any{"archiveKey": "sds-exports/x.xml", "entityCount": 350, "processedEntityCount": 349, "failedEntityCount": 0},
		"deleteFailure": map[string]any{"Error": "SdsUnavailable", "Cause": "HTTP 503"}}}, &res)
	if res.Outcome != catalog.DrillFailed || len(res.Reasons) != 2 || !strings.Contains(res.Reasons[0], "processed 349") || !strings.Contains(res.Reasons[1], "not deleted") {
		t.Errorf("finish %+v", res)
	}

	// The next plan finds it as a leftover; a data source with the prefix
	// and no mark is not the drills' and is left alone.
	foreign := drill.ScratchPrefix + "notours"
	f.addScratch(foreign)
	drillStep(t, svc, map[string]any{"action": "plan"}, &plan)
	if len(plan.Leftovers) != 1 || plan.Leftovers[0].DataSourceName != begin.ScratchName {
		t.Errorf("leftovers %+v: want only %s", plan.Leftovers, begin.ScratchName)
	}

	// Skipped: recorded, a metric of its own, DrillsFailed untouched.
	metrics.Reset()
	drillStep(t, svc, map[string]any{"action": "finish", "item": map[string]any{
		"accessId": accessID, "dataSourceName": coffee, "begin": map[string]any{"start": false, "reasons": []string{"no free data source slot: ..."}}}}, &res)
	if res.Outcome != catalog.DrillSkipped || res.Jobs != 0 {
		t.Errorf("finish %+v: want skipped", res)
	}
	if _, ok := metricValue(t, &metrics, task.MetricDrillsFailed); ok {
		t.Error("a skipped drill published DrillsFailed")
	}
	if v, _ := metricValue(t, &metrics, task.MetricDrillsSkipped); v != 1 {
		t.Errorf("DrillsSkipped %v, want 1", v)
	}

	// Discover neither backs up nor catalogues a scratch data source.
	out, err := svc.Discover(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var night task.DiscoverResult
	roundTrip(t, out, &night)
	for _, it := range night.Items {
		if drill.IsScratch(it.DataSourceName) {
			t.Errorf("the night plans a backup of %s", it.DataSourceName)
		}
	}
	recs, _, _ := store.List(ctx)
	for _, r := range recs {
		if drill.IsScratch(r.Name) {
			t.Errorf("catalog record of %s", r.Name)
		}
	}
}

// Begin refuses a drill, without a mark, when the account has no free
// data source slot.
func TestDrillBeginWithoutSlot(t *testing.T) {
	f := newFixture(t, masterKey, func(c *sdsemu.Config) { c.MaxDataSources = drill.MaxDataSources })
	svc, store := f.nightlyService(nil)
	for i := 0; len(f.emu.Jobs()) == 0 && i < drill.MaxDataSources; i++ {
		name := fmt.Sprintf("Filler%02d", i)
		if err := f.emu.AddDataSource("Fourth Coffee", sdsemu.DataSource{AccessID: strings.Repeat("7", 32), Name: name, EntityTypeName: "Things",
			MasterKey: masterKey, QueryKey: "sdsemu-query-key-fourthcoffeesample",
			Published: sdsemu.Version{JobID: strings.Repeat("8", 32), EntityCount: 3, Updated: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}); err != nil {
			break // the account is full
		}
	}
	var begin task.DrillBeginResult
	drillStep(t, svc, map[string]any{"action": "begin", "accessId": accessID, "dataSourceName": coffee}, &begin)
	if begin.Start || len(begin.Reasons) != 1 || !strings.Contains(begin.Reasons[0], "no free data source slot") {
		t.Errorf("begin with a full account: %+v", begin)
	}
	if marks, _ := store.ScratchMarks(context.Background()); len(marks) != 0 {
		t.Errorf("marks %v", marks)
	}
}

// A drill whose load SDS refused for want of a data source slot (taken
// after begin found one free) is skipped, as when begin finds none: the
// reason recorded, DrillsSkipped, no DrillsFailed, the mark dropped.
func TestDrillFinishSlotTakenBeforeLoad(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	var metrics bytes.Buffer
	svc, store := f.nightlyService(&metrics)
	ctx := context.Background()
	id := catalog.ID{AccessID: accessID, Name: coffee}
	var begin task.DrillBeginResult
	drillStep(t, svc, map[string]any{"action": "begin", "accessId": accessID, "dataSourceName": coffee}, &begin)
	if !begin.Start {
		t.Fatalf("begin %+v", begin)
	}
	var res task.DrillResult
	drillStep(t, svc, map[string]any{"action": "finish", "item": map[string]any{
		"accessId": accessID, "dataSourceName": coffee, "begin": begin,
		"failure": map[string]any{"Error": task.DataSourceLimit, "Cause": "sds: load data source: data source limit reached (HTTP 403): The account already has the maximum of 25 data sources."},
		"scratch": map[string]any{"found": false}}}, &res)
	if res.Outcome != catalog.DrillSkipped || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "no free data source slot") || !strings.Contains(res.Reasons[0], "maximum of 25") {
		t.Errorf("finish %+v: want skipped for want of a slot", res)
	}
	if v, ok := metricValue(t, &metrics, task.MetricDrillsFailed); ok {
		t.Errorf("DrillsFailed published (%v) for a skipped drill", v)
	}
	if v, _ := metricValue(t, &metrics, task.MetricDrillsSkipped); v != 1 {
		t.Errorf("DrillsSkipped %v, want 1", v)
	}
	rec, err := store.Get(ctx, id)
	if err != nil || rec.LastDrill == nil || rec.LastDrill.Outcome != catalog.DrillSkipped || !rec.LastDrill.TriedAt.IsZero() {
		t.Errorf("catalog lastDrill %+v (%v): want skipped, not counted as tried", rec.LastDrill, err)
	}
	if _, err := f.getObject(store.ScratchMarkKey(begin.ScratchName)); err == nil {
		t.Error("the mark stays though no scratch data source was made")
	}
}
