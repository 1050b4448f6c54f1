package statemachine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/paulmach/orb/encoding/wkt"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

func sdsClient(t *testing.T) *sds.Client {
	t.Helper()
	c, err := sds.New(env.EmulatorURL, localrun.DefaultMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// findDataSource returns the account's data source of that name, if any.
func findDataSource(t *testing.T, name string) (sds.DataSourceInfo, bool) {
	t.Helper()
	all, err := sdsClient(t).DataSources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.Name == name {
			return d, true
		}
	}
	return sds.DataSourceInfo{}, false
}

// versions returns a data source's versions (showAllVersions).
func versions(t *testing.T, accessID, name string) []sds.DataSourceInfo {
	t.Helper()
	v, err := sdsClient(t).DataSourceInfo(context.Background(), sds.DataSource{AccessID: accessID, Name: name}, true)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func publishedJobID(t *testing.T, accessID, name string) string {
	t.Helper()
	for _, v := range versions(t, accessID, name) {
		if v.IsActive && !v.IsStaging {
			return v.JobID
		}
	}
	t.Fatalf("%s/%s has no published version", accessID, name)
	return ""
}

// newTarget adds a data source of the sample account, with a published
// and a prior version, for a test to restore over.
func newTarget(t *testing.T, name string) string {
	t.Helper()
	err := env.Emulator.AddDataSource("Fourth Coffee", sdsemu.DataSource{
		AccessID: accessID, Name: name, EntityTypeName: "Things", MasterKey: localrun.DefaultMasterKey,
		QueryKey:  "sdsemu-query-key-fourthcoffeeroasteries",
		Published: sdsemu.Version{JobID: fmt.Sprintf("%x", sha256.Sum256([]byte(name+"published")))[:32], EntityCount: 40, Updated: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
		Prior:     []sdsemu.Version{{JobID: fmt.Sprintf("%x", sha256.Sum256([]byte(name+"prior")))[:32], EntityCount: 38, Updated: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func mustSucceed(t *testing.T, x *localrun.Execution) {
	t.Helper()
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
}

func getObject(t *testing.T, key string) []byte {
	t.Helper()
	out, err := env.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

// entities reads an archived export with the typed reader: key → column →
// value, geographies normalised through WKT; omitted values are absent.
func entities(t *testing.T, key, name string) map[string]map[string]string {
	t.Helper()
	r := dataset.NewReader(bytes.NewReader(getObject(t, key)), name)
	s, err := r.Schema()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, c := range s.Columns {
			v := rec.Value(i)
			if !v.Present {
				continue
			}
			text := v.Text()
			if c.Type == dataset.Geography {
				g, err := wkt.Unmarshal(strings.TrimSpace(text))
				if err != nil {
					t.Fatalf("%s: column %s: %v", key, c.Name, err)
				}
				text = wkt.MarshalString(g)
			}
			row[c.Name] = text
		}
		out[row[s.Key]] = row
	}
	return out
}

func loadJobs() int {
	n := 0
	for _, j := range env.Emulator.Jobs() {
		if j.Kind == sdsemu.JobLoadComplete || j.Kind == sdsemu.JobLoadCompleteStaging {
			n++
		}
	}
	return n
}

// TestRestoreRoundTrip: a data source with every geography type, non-ASCII
// text and omitted values, backed up, deleted and restored, backs up to
// the same entities; data source information shows it back.
func TestRestoreRoundTrip(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	const name = "Stores-2019"
	first := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": name})
	mustSucceed(t, first)
	mustSucceed(t, run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": name, "confirm": name, "backupFirst": false}))
	if _, ok := findDataSource(t, name); ok {
		t.Fatal("still listed after the delete")
	}

	x := run(t, "restore", map[string]any{"accessId": accessID, "dataSourceName": name, "confirm": name})
	mustSucceed(t, x)
	newID, _ := x.Output["accessId"].(string)
	if newID == "" || x.Output["published"] != true || x.Output["archiveKey"] != first.Output["key"] || x.Output["entityCount"] != 140.0 {
		t.Fatalf("output %v", x.Output)
	}
	if n := len(nested(t, x)); n != 0 {
		t.Errorf("%d nested backups of a target that did not exist", n)
	}
	info, ok := findDataSource(t, name)
	if !ok || info.AccessID != newID {
		t.Fatalf("data source information: %v %+v, want accessId %s", ok, info, newID)
	}
	// The catalog follows: the old accessId is marked deleted, the restored
	// data source is there again with a version still to archive.
	cat := catalog.New(env.S3, env.Bucket, "")
	if rec, err := cat.Get(context.Background(), catalog.ID{AccessID: accessID, Name: name}); err != nil || rec.DeletedAt.IsZero() {
		t.Errorf("catalog record of the deleted data source: %+v, %v; want it marked deleted", rec, err)
	}
	if rec, err := cat.Get(context.Background(), catalog.ID{AccessID: newID, Name: name}); err != nil || !rec.DeletedAt.IsZero() || rec.PendingSince.IsZero() {
		t.Errorf("catalog record of the restored data source: %+v, %v; want it present, not deleted, pending an archive", rec, err)
	}

	second := run(t, "backup", map[string]any{"accessId": newID, "dataSourceName": name})
	mustSucceed(t, second)
	a := entities(t, first.Output["key"].(string), name)
	b := entities(t, second.Output["key"].(string), name)
	if len(a) != 140 || len(b) != len(a) {
		t.Fatalf("%d entities archived before, %d after", len(a), len(b))
	}
	nonASCII, widths := false, map[int]bool{}
	for k, row := range a {
		if fmt.Sprint(row) != fmt.Sprint(b[k]) {
			t.Fatalf("entity %s differs:\nbefore %v\nafter  %v", k, row, b[k])
		}
		for _, v := range row {
			nonASCII = nonASCII || strings.ContainsFunc(v, func(r rune) bool { return r > 127 })
		}
		widths[len(row)] = true
	}
	if !nonASCII || len(widths) < 2 {
		t.Error("the sample lacks non-ASCII text or omitted values: the round trip proves less than it claims")
	}
}

// archived archives a data source and returns the backup's output.
func archived(t *testing.T, access, name string) map[string]any {
	t.Helper()
	x := run(t, "backup", map[string]any{"accessId": access, "dataSourceName": name})
	mustSucceed(t, x)
	return x.Output
}

func TestRestoreStagedIntoNewNameThenPublish(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")

	x := run(t, "restore", map[string]any{"archiveKey": src["key"], "targetName": "RoasteriesStaged", "confirm": "RoasteriesStaged", "staging": true})
	mustSucceed(t, x)
	if x.Output["published"] != false {
		t.Fatalf("output %v", x.Output)
	}
	staged := false
	for _, v := range versions(t, x.Output["accessId"].(string), "RoasteriesStaged") {
		staged = staged || (v.IsStaging && v.JobID != "")
		if !v.IsStaging && v.IsActive {
			t.Errorf("a staged restore published %+v", v)
		}
	}
	if !staged {
		t.Error("no staged version after a staged restore")
	}

	// The catalog records the restore under the data source it created,
	// and leaves the source's record as it was.
	cat := catalog.New(env.S3, env.Bucket, "")
	source := catalog.ID{AccessID: accessID, Name: "FourthCoffeeRoasteries"}
	before, err := cat.Get(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	x = run(t, "restore", map[string]any{"archiveKey": src["key"], "targetName": "RoasteriesCopy", "confirm": "RoasteriesCopy", "staging": true, "publish": true})
	mustSucceed(t, x)
	if x.Output["published"] != true || countEntered(x, "Publish") != 1 {
		t.Fatalf("output %v", x.Output)
	}
	copyID := x.Output["accessId"].(string)
	if x.Output["dataSourceName"] != "RoasteriesCopy" || copyID == accessID {
		t.Errorf("output names %v/%v, want the target RoasteriesCopy under a new accessId", copyID, x.Output["dataSourceName"])
	}
	if after, err := cat.Get(context.Background(), source); err != nil || !reflect.DeepEqual(after, before) {
		t.Errorf("the source's catalog record changed:\nbefore %+v\nafter  %+v (%v)", before, after, err)
	}
	if rec, err := cat.Get(context.Background(), catalog.ID{AccessID: copyID, Name: "RoasteriesCopy"}); err != nil || !rec.DeletedAt.IsZero() || rec.PendingSince.IsZero() {
		t.Errorf("catalog record of the target %s/RoasteriesCopy: %+v, %v; want it present, pending an archive", copyID, rec, err)
	}
	publishedJobID(t, copyID, "RoasteriesCopy")
	if orig, ok := findDataSource(t, "FourthCoffeeRoasteries"); !ok || orig.AccessID != accessID {
		t.Errorf("the original is gone or moved: %v %+v", ok, orig)
	}
	got := entities(t, archived(t, copyID, "RoasteriesCopy")["key"].(string), "RoasteriesCopy")
	want := entities(t, src["key"].(string), "FourthCoffeeRoasteries")
	if len(got) != len(want) || len(got) == 0 {
		t.Errorf("copy has %d entities, the original %d", len(got), len(want))
	}
}

// TestRestoreOverExistingBacksUpFirstThenRollback: the target's published
// version is archived by a nested backup before the load replaces it, and
// a rollback brings it back.
func TestRestoreOverExistingBacksUpFirstThenRollback(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	over := newTarget(t, "RestoreOver")
	before := publishedJobID(t, accessID, over)

	x := run(t, "restore", map[string]any{"archiveKey": src["key"], "targetName": over, "confirm": "Scratch"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" || countEntered(x, "Load") != 0 {
		t.Fatalf("unconfirmed restore: %s %s %s", x.Status, x.Error, x.Cause)
	}

	x = run(t, "restore", map[string]any{"archiveKey": src["key"], "targetName": over, "confirm": over})
	mustSucceed(t, x)
	kids := nested(t, x)
	backup, _ := x.Output["backup"].(map[string]any)
	if len(kids) != 1 || backup == nil || backup["entityCount"] != 40.0 || !objectExists(t, backup["key"].(string)) {
		t.Fatalf("nested backups %d, backup %v", len(kids), x.Output["backup"])
	}
	if x.Output["accessId"] != accessID {
		t.Errorf("restoring into an existing data source changed its accessId to %v", x.Output["accessId"])
	}
	after := publishedJobID(t, accessID, over)
	if after == before {
		t.Fatal("the published version did not change")
	}

	x = run(t, "rollback", map[string]any{"dataSourceName": over, "jobId": before, "confirm": "wrong"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" || countEntered(x, "Rollback") != 0 {
		t.Fatalf("unconfirmed rollback: %s %s", x.Status, x.Error)
	}
	x = run(t, "rollback", map[string]any{"dataSourceName": over, "jobId": before, "confirm": over})
	mustSucceed(t, x)
	if got := publishedJobID(t, accessID, over); got != before || x.Output["accessId"] != accessID {
		t.Errorf("published %s after the rollback, want %s; output %v", got, before, x.Output)
	}
}

// writeArchive stores body with a manifest, as a backup would, under a
// made-up job id; it returns the archive key.
func writeArchive(t *testing.T, name, jobID string, body []byte, entities int64, verified bool, mutate func([]byte) []byte) string {
	t.Helper()
	key := fmt.Sprintf("sds-exports/%s/%s/2024/06/01/%s.xml", accessID, name, jobID)
	sum := sha256.Sum256(body)
	m := archive.Manifest{FormatVersion: archive.ManifestFormatVersion, AccessID: accessID, DataSourceName: name, JobID: jobID,
		EntityCount: entities, Bytes: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ContentType: "application/xml",
		Verified: verified, Bucket: env.Bucket, Key: key}
	if !verified {
		m.Problems = []string{"entity count 23, the job reported 24"}
	}
	mj, _ := json.Marshal(m)
	if mutate != nil {
		body = mutate(bytes.Clone(body))
	}
	putObject(t, key, body)
	putObject(t, key+".manifest.json", mj)
	return key
}

func TestRestoreRefusesTamperedAndUnverified(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	body := getObject(t, src["key"].(string))
	loads := loadJobs()

	tampered := writeArchive(t, "FourthCoffeeRoasteries", "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a01", body, 24, true, func(b []byte) []byte {
		i := bytes.LastIndex(b, []byte("<Name>"))
		b[i+6] ^= 0x01 // one letter of a name: same length, still XML
		return b
	})
	x := run(t, "restore", map[string]any{"archiveKey": tampered, "targetName": "TamperedTarget", "confirm": "TamperedTarget"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "IntegrityError" || !strings.Contains(x.Cause, "sha256") {
		t.Fatalf("tampered: %s %s %s", x.Status, x.Error, x.Cause)
	}

	unverified := writeArchive(t, "FourthCoffeeRoasteries", "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a02", body, 24, false, nil)
	x = run(t, "restore", map[string]any{"archiveKey": unverified, "targetName": "UnverifiedTarget", "confirm": "UnverifiedTarget"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ArchiveUnverified" || countEntered(x, "Load") != 0 {
		t.Fatalf("unverified: %s %s %s", x.Status, x.Error, x.Cause)
	}
	if n := loadJobs(); n != loads {
		t.Errorf("%d load jobs created by refused restores", n-loads)
	}
	for _, name := range []string{"TamperedTarget", "UnverifiedTarget"} {
		if _, ok := findDataSource(t, name); ok {
			t.Errorf("%s exists after a refused restore", name)
		}
	}

	// force restores an unverified archive.
	x = run(t, "restore", map[string]any{"archiveKey": unverified, "targetName": "UnverifiedTarget", "confirm": "UnverifiedTarget", "force": true})
	mustSucceed(t, x)
}

// withoutLocation takes the first entity's Latitude and Longitude out of
// an export: SDS's load refuses it.
func withoutLocation(body string) string {
	for _, tag := range []string{"Latitude", "Longitude"} {
		i, j := strings.Index(body, "<"+tag+">"), strings.Index(body, "</"+tag+">")
		body = body[:i] + body[j+len("</"+tag+">"):]
	}
	return body
}

// TestRestoreRefusesUnrestorableArchive: an archive whose manifest says
// restorable: false fails the restore in Prepare, before any load job;
// force sends it to the load, which SDS refuses.
func TestRestoreRefusesUnrestorableArchive(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	body := withoutLocation(string(getObject(t, src["key"].(string))))
	key := writeArchive(t, "FourthCoffeeRoasteries", "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a05", []byte(body), 24, true, nil)
	var m archive.Manifest
	if err := json.Unmarshal(getObject(t, key+archive.ManifestSuffix), &m); err != nil {
		t.Fatal(err)
	}
	m.Restorable, m.RestoreProblems = new(false), []string{"entity 1: the entity has no location: give Latitude and Longitude or a geography value"}
	mj, _ := json.Marshal(m)
	putObject(t, key+archive.ManifestSuffix, mj)

	loads := loadJobs()
	x := run(t, "restore", map[string]any{"archiveKey": key, "targetName": "UnrestorableTarget", "confirm": "UnrestorableTarget"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ArchiveUnrestorable" || countEntered(x, "Load") != 0 || !strings.Contains(x.Cause, "no location") {
		t.Fatalf("unrestorable: %s %s %s", x.Status, x.Error, x.Cause)
	}
	if n := loadJobs(); n != loads {
		t.Errorf("%d load jobs created by a refused restore", n-loads)
	}
	x = run(t, "restore", map[string]any{"archiveKey": key, "targetName": "UnrestorableTarget", "confirm": "UnrestorableTarget", "force": true})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "JobAborted" || loadJobs() != loads+1 {
		t.Fatalf("forced: %s %s %s; want the load refused by SDS", x.Status, x.Error, x.Cause)
	}
}

// TestRestoreAbortedLoadKeepsFailedEntities: an archive whose entities SDS
// rejects aborts the load; the failed entities are kept beside the archive
// and the existing data source keeps its published version.
func TestRestoreAbortedLoadKeepsFailedEntities(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	body := getObject(t, src["key"].(string))
	// Repeat the first entity's id in the second: a duplicate key.
	r := dataset.NewReader(bytes.NewReader(body), "FourthCoffeeRoasteries")
	s, err := r.Schema()
	if err != nil {
		t.Fatal(err)
	}
	open, close := "<"+s.Key+">", "</"+s.Key+">"
	i := bytes.Index(body, []byte(open))
	j := bytes.Index(body[i:], []byte(close))
	firstID := body[i+len(open) : i+j]
	k := i + j + bytes.Index(body[i+j:], []byte(open))
	l := bytes.Index(body[k:], []byte(close))
	bad := append(append(bytes.Clone(body[:k+len(open)]), firstID...), body[k+l:]...)
	key := writeArchive(t, "FourthCoffeeRoasteries", "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a03", bad, 24, true, nil)
	aborted := newTarget(t, "RestoreAborted")
	before := publishedJobID(t, accessID, aborted)

	x := run(t, "restore", map[string]any{"archiveKey": key, "targetName": aborted, "confirm": aborted, "backupFirst": false})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "JobAborted" {
		t.Fatalf("%s %s %s", x.Status, x.Error, x.Cause)
	}
	failedKey := strings.TrimSuffix(key, ".xml") + ".load-"
	if !strings.Contains(x.Cause, failedKey) {
		t.Fatalf("cause %q does not name the failed entities beside %s", x.Cause, key)
	}
	start := strings.Index(x.Cause, failedKey)
	kept := x.Cause[start:]
	if end := strings.IndexAny(kept, " ;\n"); end > 0 {
		kept = kept[:end]
	}
	if failed := getObject(t, kept); !bytes.Contains(failed, firstID) {
		t.Errorf("the failed entities file does not hold the duplicate id %s:\n%.500s", firstID, failed)
	}
	if got := publishedJobID(t, accessID, aborted); got != before {
		t.Errorf("published version %s after an aborted load, want %s", got, before)
	}
}

// TestRestoreLoadFaults: 503 and 429 answers to the upload are retried by
// the state machine; the load is not doubled.
func TestRestoreLoadFaults(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	for _, f := range []sdsemu.Fault{
		{Op: sdsemu.OpLoad, Kind: sdsemu.FaultStatus, Status: 503, Times: 2},
		{Op: sdsemu.OpLoad, Kind: sdsemu.FaultStatus, Status: 429, RetryAfter: 120, Times: 2},
	} {
		want := map[int]string{503: "SdsUnavailable", 429: "Throttled"}[f.Status]
		t.Run(fmt.Sprint(f.Status), func(t *testing.T) {
			target := fmt.Sprintf("Faulty%d", f.Status)
			if err := env.Emulator.AddFault(f); err != nil {
				t.Fatal(err)
			}
			loads := loadJobs()
			x := run(t, "restore", map[string]any{"archiveKey": src["key"], "targetName": target, "confirm": target})
			mustSucceed(t, x)
			if n := loadJobs() - loads; n != 1 {
				t.Errorf("%d load jobs, want 1", n)
			}
			failures := 0
			for _, ev := range x.History {
				if d := ev.LambdaFunctionFailedEventDetails; d != nil && aws.ToString(d.Error) == want {
					failures++
				}
				if d := ev.TaskFailedEventDetails; d != nil && aws.ToString(d.Error) == want {
					failures++
				}
			}
			if failures != 2 || len(env.Emulator.Faults()) != 0 {
				t.Errorf("%d failed load attempts with %s, want 2; faults left %v", failures, want, env.Emulator.Faults())
			}
		})
	}
}

// TestRestoreStopsWhenBackupFirstFails: the target's backup fails, so
// nothing is loaded and the child's error is the restore's.
func TestRestoreStopsWhenBackupFirstFails(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	noBackup := newTarget(t, "RestoreNoBackup")
	before := publishedJobID(t, accessID, noBackup)
	loads := loadJobs()
	env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultAbort, Message: "Export failed on the service side."})
	x := run(t, "restore", map[string]any{"archiveKey": src["key"], "targetName": noBackup, "confirm": noBackup})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "JobAborted" || !strings.Contains(x.Cause, "Export failed") || countEntered(x, "Load") != 0 {
		t.Fatalf("%s %s %s", x.Status, x.Error, x.Cause)
	}
	if loadJobs() != loads || publishedJobID(t, accessID, noBackup) != before {
		t.Error("the target changed although its backup failed")
	}
}

// TestUnrepeatedStepsFailOnUnavailable: a delete, publish or rollback that
// SDS keeps answering with 503 is not started again by the state machine
// (a repeat could report a deleted data source as missing, or publish a
// newer staged version): the execution fails with SdsUnavailable after the
// client's own attempts, and the data source keeps its published version.
func TestUnrepeatedStepsFailOnUnavailable(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	src := archived(t, accessID, "FourthCoffeeRoasteries")
	clientAttempts := sds.DefaultRetry.MaxAttempts // the functions' client policy
	for _, tc := range []struct {
		name    string
		op      string
		times   int // 503s armed
		machine string
		input   func(target string) map[string]any
		sent    int // requests that reach SDS
	}{
		{"delete", sdsemu.OpDelete, clientAttempts, "delete", func(target string) map[string]any {
			return map[string]any{"accessId": accessID, "dataSourceName": target, "confirm": target, "backupFirst": false}
		}, clientAttempts},
		{"rollback", sdsemu.OpRollback, 1, "rollback", func(target string) map[string]any {
			return map[string]any{"dataSourceName": target, "jobId": fmt.Sprintf("%x", sha256.Sum256([]byte(target+"prior")))[:32], "confirm": target}
		}, 1},
		{"publish", sdsemu.OpPublish, 1, "restore", func(target string) map[string]any {
			return map[string]any{"archiveKey": src["key"], "targetName": target, "confirm": target, "staging": true, "publish": true}
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := newTarget(t, "Unrepeated"+tc.name)
			published := publishedJobID(t, accessID, target)
			if err := env.Emulator.AddFault(sdsemu.Fault{Op: tc.op, Kind: sdsemu.FaultStatus, Status: 503, Times: tc.times}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(env.Emulator.ClearFaults)
			env.Emulator.ResetRequests()
			x := run(t, tc.machine, tc.input(target))
			if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "SdsUnavailable" {
				t.Fatalf("status %s error %q (%s), want FAILED SdsUnavailable", x.Status, x.Error, x.Cause)
			}
			sent := 0
			for _, r := range env.Emulator.Requests() {
				if r.Operation == tc.op {
					sent++
				}
			}
			if sent != tc.sent {
				t.Errorf("%d %s requests reached SDS, want %d", sent, tc.op, tc.sent)
			}
			if got := publishedJobID(t, accessID, target); got != published {
				t.Errorf("published %s, want %s unchanged", got, published)
			}
		})
	}
}

// TestRestoreRefusesUnloadableArchiveBeforeBackup: an archive whose
// manifest declares more than SDS loads (here 200,001 entities) fails the
// restore in Prepare: the existing target is not backed up first and no
// job is started.
func TestRestoreRefusesUnloadableArchiveBeforeBackup(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	key := writeArchive(t, "FourthCoffeeRoasteries", "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a04", []byte("<never loaded/>"), sds.MaxLoadEntities+1, true, nil)
	jobs := len(env.Emulator.Jobs())
	x := run(t, "restore", map[string]any{"archiveKey": key, "confirm": "FourthCoffeeRoasteries"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" || !strings.Contains(x.Cause, "200000") {
		t.Fatalf("%s %s %s", x.Status, x.Error, x.Cause)
	}
	if countEntered(x, "Backup") != 0 || len(env.Emulator.Jobs()) != jobs {
		t.Errorf("the target was backed up or a job started before the archive was refused (%d jobs)", len(env.Emulator.Jobs())-jobs)
	}
}

// TestRestoreAfterDeleteKeepsVisibility: a public data source deleted and
// restored comes back public (the catalog recorded it public), under a new
// accessId, also through a staged load and its publish; with "public":
// false it comes back private.
func TestRestoreAfterDeleteKeepsVisibility(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	name := newTarget(t, "VisibleCoffee")
	mustSucceed(t, run(t, "setpublic", map[string]any{"accessId": accessID, "dataSourceName": name, "public": true}))
	src := archived(t, accessID, name)
	cat := catalog.New(env.S3, env.Bucket, "")
	if x := run(t, "restore", map[string]any{"archiveKey": src["key"], "confirm": name, "public": "yes"}); x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" || countEntered(x, "Prepare") != 0 {
		t.Fatalf(`restore with "public": "yes": %s %s, entered Prepare %d times; want InvalidInput before anything`, x.Status, x.Error, countEntered(x, "Prepare"))
	}

	access := accessID
	for _, tc := range []struct {
		input      map[string]any
		wantPublic bool
		wantFrom   string
	}{
		{map[string]any{}, true, "catalog"},
		// A staged load cannot be public: published, it is made public.
		{map[string]any{"staging": true, "publish": true}, true, "catalog"},
		{map[string]any{"public": false}, false, "request"},
	} {
		mustSucceed(t, run(t, "delete", map[string]any{"accessId": access, "dataSourceName": name, "confirm": name, "backupFirst": false}))
		in := map[string]any{"archiveKey": src["key"], "confirm": name}
		for k, v := range tc.input {
			in[k] = v
		}
		x := run(t, "restore", in)
		mustSucceed(t, x)
		if x.Output["public"] != tc.wantPublic || x.Output["publicFrom"] != tc.wantFrom {
			t.Errorf("restore %v: output public %v from %v, want %v from %s", tc.input, x.Output["public"], x.Output["publicFrom"], tc.wantPublic, tc.wantFrom)
		}
		info, ok := findDataSource(t, name)
		if !ok || info.IsPublic != tc.wantPublic {
			t.Fatalf("restore %v: data source %v %+v, want public %v", tc.input, ok, info, tc.wantPublic)
		}
		if info.AccessID == access {
			t.Errorf("restore %v after a delete kept accessId %s; SDS gives a new one", tc.input, access)
		}
		access = info.AccessID
		want := catalog.Private
		if tc.wantPublic {
			want = catalog.Public
		}
		if rec, err := cat.Get(context.Background(), catalog.ID{AccessID: access, Name: name}); err != nil || rec.Visibility != want {
			t.Errorf("restore %v: catalog record of the new accessId %+v, %v; want visibility %s", tc.input, rec, err, want)
		}
	}
}
