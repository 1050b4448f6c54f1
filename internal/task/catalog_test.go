package task_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/task"
)

// nightlyService is a Service with what discover, record and inventory
// need, against the fixture's emulator and bucket.
func (f *fixture) nightlyService(metrics io.Writer) (*task.Service, *catalog.Store) {
	f.t.Helper()
	limits, err := nightly.Limits{}.WithDefaults()
	if err != nil {
		f.t.Fatal(err)
	}
	store := catalog.New(s3Client, f.bucket, "")
	cfg := task.Config{SDSBaseURL: f.srv.URL, MasterKeySecretID: f.secretID, ArchiveBucket: f.bucket, ArchivePrefix: "sds-exports/",
		SecretTTL: time.Minute, Limits: limits}
	return task.NewService(cfg, task.Deps{Keys: masterkey.New(smClient, time.Minute), Catalog: store, Objects: s3Client,
		Secrets: smClient, Metrics: metrics}), store
}

func (f *fixture) putObject(key, body string) {
	f.t.Helper()
	if _, err := s3Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &f.bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) getObject(key string) (string, error) {
	out, err := s3Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &f.bucket, Key: &key})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func roundTrip(t *testing.T, v any, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// A damaged record is its own error type, not retried, naming the object;
// it was ArchiveUnavailable, which the state machines retry.
func TestDamagedRecordIsCatalogCorrupt(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	_, store := f.nightlyService(nil)
	id := catalog.ID{AccessID: accessID, Name: coffee}
	f.putObject(store.RecordKey(id), `{"schema":1,"accessId":"someone","name":"else","entityCount":0,"needsKey":false,"updated":"2026-01-01T00:00:00Z","revision":1}`)
	_, err := store.Get(context.Background(), id)
	var ie messages.InvokeResponse_Error
	if !errors.As(task.LambdaError(err), &ie) || ie.Type != task.CatalogCorrupt || !strings.Contains(ie.Message, "s3://"+f.bucket+"/"+store.RecordKey(id)) {
		t.Errorf("damaged record: %v, want %s naming s3://%s/%s", task.LambdaError(err), task.CatalogCorrupt, f.bucket, store.RecordKey(id))
	}
}

// One damaged record does not stop the night: discover plans its data
// source as new, reports it in its output, the metrics and the inventory,
// and leaves the object as it is; the backup's record step then replaces
// it, keeping the damaged one aside.
func TestDamagedRecordDoesNotStopTheNight(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	var metrics bytes.Buffer
	svc, store := f.nightlyService(&metrics)
	ctx := context.Background()
	id := catalog.ID{AccessID: accessID, Name: coffee}
	const garbage = "\x00\x01 not a record"
	f.putObject(store.RecordKey(id), garbage)

	out, err := svc.Discover(ctx, []byte(`{}`))
	if err != nil {
		t.Fatalf("discover with one damaged record: %v", err)
	}
	var res task.DiscoverResult
	roundTrip(t, out, &res)
	if len(res.DamagedRecords) != 1 || res.DamagedRecords[0] != store.RecordKey(id) {
		t.Errorf("discover reports damaged records %v, want [%s]", res.DamagedRecords, store.RecordKey(id))
	}
	var planned *task.ScheduledItem
	for i, it := range res.Items {
		if strings.EqualFold(it.DataSourceName, coffee) {
			planned = &res.Items[i]
		}
	}
	if planned == nil || len(res.Items) < 2 {
		t.Fatalf("scheduled %+v: want %s (as new) among the others", res.Items, coffee)
	}
	// The plan's metrics line (the heartbeat's is another).
	found := false
	for _, line := range bytes.Split(bytes.TrimSpace(metrics.Bytes()), []byte("\n")) {
		var emf map[string]any
		if json.Unmarshal(line, &emf) == nil && emf[nightly.MetricDamagedRecords] == float64(1) {
			found = true
		}
	}
	if !found {
		t.Errorf("metrics lines %s: want %s = 1", metrics.String(), nightly.MetricDamagedRecords)
	}
	if body, _ := f.getObject(store.RecordKey(id)); body != garbage {
		t.Errorf("discover changed the damaged record: %q", body)
	}

	inv, err := svc.Inventory(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var list task.Inventory
	roundTrip(t, inv, &list)
	state := map[string]string{}
	for _, e := range list.DataSources {
		state[e.Name] = e.State
	}
	if len(list.Damaged) != 1 || list.Damaged[0].Key != store.RecordKey(id) || state[strings.ToLower(coffee)] != "damaged" {
		t.Errorf("inventory: damaged %+v, states %v", list.Damaged, state)
	}

	// The backup's record step, of the archive it made.
	now := time.Now().UTC()
	made := manifestOf(f.bucket, archive.Ref{AccessID: accessID, DataSourceName: coffee, Day: now, JobID: "0123456789abcdef0123456789abcdef"}, now, true)
	made.VersionJobID = planned.JobID
	putManifests(t, made)
	rec, err := svc.Record(ctx, mustJSON(t, map[string]any{"operation": "backup", "accessId": accessID, "dataSourceName": coffee,
		"result": map[string]any{"jobId": made.JobID, "versionJobId": planned.JobID, "key": made.Key,
			"sha256": made.SHA256, "entityCount": made.EntityCount, "verified": true}}))
	if err != nil {
		t.Fatalf("record over a damaged record: %v", err)
	}
	var rr task.RecordResult
	roundTrip(t, rec, &rr)
	if rr.Status != task.StatusArchived || rr.DamagedRecordKeptAt == "" {
		t.Fatalf("record result %+v: want Archived and where the damaged record was kept", rr)
	}
	if kept, err := f.getObject(rr.DamagedRecordKeptAt); err != nil || kept != garbage {
		t.Errorf("damaged record kept at %s: %q, %v", rr.DamagedRecordKeptAt, kept, err)
	}
	if r, err := store.Get(ctx, id); err != nil || r.VerifiedVersion != planned.JobID {
		t.Errorf("record after the backup: %+v, %v", r, err)
	}
	inv, _ = svc.Inventory(ctx, []byte(`{}`))
	roundTrip(t, inv, &list)
	if len(list.Damaged) != 0 {
		t.Errorf("inventory still lists damaged records after the repair: %+v", list.Damaged)
	}
}

// A garbage index is rebuilt from the records: the inventory list works
// again, by itself and on request.
func TestDamagedIndexIsRebuiltForTheInventory(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	svc, store := f.nightlyService(nil)
	ctx := context.Background()
	for _, n := range []string{coffee, "Stores-2019"} {
		if _, err := svc.Record(ctx, mustJSON(t, map[string]any{"operation": "setpublic", "accessId": accessID, "dataSourceName": n, "result": map[string]any{"public": true}})); err != nil {
			t.Fatal(err)
		}
	}
	list := func(event string) task.Inventory {
		t.Helper()
		out, err := svc.Inventory(ctx, []byte(event))
		if err != nil {
			t.Fatalf("inventory %s: %v", event, err)
		}
		var inv task.Inventory
		roundTrip(t, out, &inv)
		return inv
	}
	f.putObject(store.IndexKey(), "garbage")
	if inv := list(`{}`); len(inv.DataSources) != 2 || inv.DataSources[0].Visibility != catalog.Public {
		t.Errorf("inventory over a garbage index: %+v", inv)
	}
	if body, _ := f.getObject(store.IndexKey()); !strings.Contains(body, "Stores-2019") {
		t.Errorf("index not rebuilt in S3: %s", body)
	}
	// A stale but readable index is rebuilt on request.
	f.putObject(store.IndexKey(), `{"schema":1,"updated":"2026-01-01T00:00:00Z","dataSources":[]}`)
	if inv := list(`{}`); len(inv.DataSources) != 0 {
		t.Fatalf("a readable index is used as it is: %+v", inv)
	}
	if inv := list(`{"rebuildIndex":true}`); len(inv.DataSources) != 2 {
		t.Errorf("inventory after rebuildIndex: %+v", inv)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A dry run plans as a night would and records nothing: no catalog record,
// no metrics line, no item for a state machine to back up; the plan lists
// every data source with what a run would do.
func TestDiscoverDryRunRecordsNothing(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	var metrics bytes.Buffer
	svc, store := f.nightlyService(&metrics)
	ctx := context.Background()

	out, err := svc.Discover(ctx, []byte(`{"dryRun":true}`))
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	var res task.DiscoverResult
	roundTrip(t, out, &res)
	if len(res.Items) != 0 || res.Plan == nil {
		t.Fatalf("dry run: items %+v, plan %+v: want no items and a plan", res.Items, res.Plan)
	}
	backups := 0
	for _, it := range res.Plan.Items {
		if it.Action == "backup" {
			backups++
		}
		if it.State == "" || it.Action == "" || it.Version == "" {
			t.Errorf("plan item %+v: want state, action and version", it)
		}
	}
	if backups == 0 || backups != res.Seen-res.UpToDate-res.CarriedOver-res.NeedsKey {
		t.Errorf("plan schedules %d backups of %d seen (%d up to date, %d carried over)", backups, res.Seen, res.UpToDate, res.CarriedOver)
	}
	if res.Plan.Budget == 0 || res.Plan.RPOHours == 0 {
		t.Errorf("plan limits %+v", res.Plan)
	}
	if metrics.Len() != 0 {
		t.Errorf("a dry run published metrics: %s", metrics.String())
	}
	recs, _, err := store.List(ctx)
	if err != nil || len(recs) != 0 {
		t.Errorf("a dry run wrote %d catalog records (%v)", len(recs), err)
	}

	// The same night for real records what it saw and schedules the same.
	out, err = svc.Discover(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var real task.DiscoverResult
	roundTrip(t, out, &real)
	if len(real.Items) != backups {
		t.Errorf("the real run schedules %d, the dry run planned %d", len(real.Items), backups)
	}
	if recs, _, _ := store.List(ctx); len(recs) == 0 {
		t.Error("the real run recorded nothing")
	}
	// The real run put the heartbeat; a run that fails at once still does.
	if n := strings.Count(metrics.String(), `"NightlyHeartbeat":1`); n != 1 {
		t.Errorf("the real run printed %d heartbeats, want 1:\n%s", n, metrics.String())
	}
	if _, err := svc.Discover(ctx, []byte(`{"include":["[bad"]}`)); err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
	if n := strings.Count(metrics.String(), `"NightlyHeartbeat":1`); n != 2 {
		t.Errorf("a run that failed in discovery printed no heartbeat:\n%s", metrics.String())
	}
}

// A manual backup names no version: it is recorded as the verified archive
// of the published version, as a nightly one is, so the data source is up
// to date and the next night does not archive it again.
func TestManualBackupRecordsThePublishedVersion(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	svc, store := f.nightlyService(io.Discard)
	ctx := context.Background()
	planned := func() map[string]task.PlanViewItem {
		t.Helper()
		out, err := svc.Discover(ctx, []byte(`{"dryRun":true}`))
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		var res task.DiscoverResult
		roundTrip(t, out, &res)
		items := map[string]task.PlanViewItem{}
		for _, it := range res.Plan.Items {
			items[strings.ToLower(it.DataSourceName)] = it
		}
		return items
	}
	before := planned()[strings.ToLower(coffee)]
	if before.Action != "backup" || before.Version == "" {
		t.Fatalf("before the backup the plan has %+v: want a backup of the published version", before)
	}

	// The backup state machine's steps, started without a version.
	st := f.backupToCompleted()
	out := f.mustInvoke("copytos3", st)
	rec, err := svc.Record(ctx, mustJSON(t, map[string]any{"operation": "backup", "accessId": accessID, "dataSourceName": coffee, "result": out}))
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	var rr task.RecordResult
	roundTrip(t, rec, &rr)
	if rr.Status != task.StatusArchived {
		t.Fatalf("record result %+v", rr)
	}
	r, err := store.Get(ctx, catalog.ID{AccessID: accessID, Name: coffee})
	if err != nil || !strings.EqualFold(r.VerifiedVersion, before.Version) || r.ArchiveKey != out["key"] || !r.PendingSince.IsZero() {
		t.Fatalf("catalog record after the manual backup: %+v, %v: want version %s verified in %v", r, err, before.Version, out["key"])
	}

	inv, err := svc.Inventory(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var list task.Inventory
	roundTrip(t, inv, &list)
	for _, e := range list.DataSources {
		if strings.EqualFold(e.Name, coffee) && e.State != "up-to-date" {
			t.Errorf("inventory says %s is %s after its manual backup", coffee, e.State)
		}
	}
	if after := planned()[strings.ToLower(coffee)]; after.State != string(nightly.UpToDate) || after.Action != "none" {
		t.Errorf("the next night plans %+v: want nothing for an up-to-date data source", after)
	}
}
