// Package statemachine_test executes every state machine definition in
// moto's ASL interpreter, with the real function binaries behind a local
// Lambda endpoint and the SDS emulator behind them.
package statemachine_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/testenv"
)

const (
	accessID        = "20181f26d9e94c81acdf9496133d4f23"
	transitAccessID = "6b1c9e2f04d84a7f9a3e5d7c8b2f1e40"
	// transitSecret holds the master key of the sample's second account,
	// named by the events that touch it (masterKeySecretId).
	transitSecret = "sdsops/transit-master-key"
	bigSample     = "BigSample"
	scratchA      = "ScratchA"
	scratchB      = "ScratchBB"
	scratchC      = "ScratchCCC"
	scratchD      = "ScratchDDDD"
)

var env *localrun.Env

func TestMain(m *testing.M) {
	ctx := context.Background()
	cfg := sdsemu.DefaultConfig()
	cfg.MaxJobsPerDay = 100000 // many scenarios share one account
	// An export of about 14 MB: a multipart upload of two 8 MiB parts.
	cfg.Accounts[0].DataSources = append(cfg.Accounts[0].DataSources, sdsemu.DataSource{
		AccessID: accessID, Name: bigSample, EntityTypeName: "Shops", MasterKey: localrun.DefaultMasterKey,
		QueryKey: "sdsemu-query-key-bigsample", EntityPaddingBytes: 700,
		Published: sdsemu.Version{JobID: "5e1b0c7fd3a94e0f8b6a2c4d9e8f7a61", EntityCount: 12000, Updated: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
	})
	// Data sources that tests may delete without disturbing others.
	for _, name := range []string{scratchA, scratchB, scratchC, scratchD} {
		cfg.Accounts[0].DataSources = append(cfg.Accounts[0].DataSources, sdsemu.DataSource{
			AccessID: accessID, Name: name, EntityTypeName: "Things", MasterKey: localrun.DefaultMasterKey,
			QueryKey:  "sdsemu-query-key-" + strings.ToLower(name),
			Published: sdsemu.Version{JobID: fmt.Sprintf("%032x", len(name)*7919), EntityCount: 40, Updated: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)},
			Staged:    &sdsemu.Version{JobID: fmt.Sprintf("%032x", len(name)*104729), EntityCount: 45, Updated: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)},
		})
	}
	var err error
	env, err = localrun.Start(ctx, localrun.Options{RepoRoot: "..", Emulator: cfg, SkipWaits: true,
		FunctionEnv: map[string]string{"SDS_TIMEOUT": "2s"}, Log: metricLines})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local deployment:", err)
		os.Exit(1)
	}
	if _, err := env.Secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(transitSecret), SecretString: aws.String("sdsemu-master-key-transit")}); err != nil {
		env.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The scan follows every test, so that it sees what all of them left;
	// the deployment is stopped after it.
	testenv.Main(m, func() error {
		minimum := 0
		if f := flag.Lookup("test.run"); f != nil && f.Value.String() == "" {
			minimum = 10 // the whole suite ran
		}
		return keysLeft(context.Background(), env, minimum)
	}, func() error { env.Stop(); return nil })
}

var execCount atomic.Int64

// run executes machine with input, waiting at most a minute.
func run(t *testing.T, machine string, input any) *localrun.Execution {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("%s-%d-%d", machine, time.Now().UnixNano(), execCount.Add(1))
	x, err := env.Run(ctx, machine, name, input)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// setTiming makes download and other jobs complete on the first look
// unless a test says otherwise.
func setTiming(t *testing.T, tm sdsemu.Timing) {
	env.Emulator.SetTiming(tm)
	env.Emulator.ClearFaults()
	t.Cleanup(func() { env.Emulator.SetTiming(sdsemu.Timing{}); env.Emulator.ClearFaults() })
}

func countEntered(x *localrun.Execution, state string) int {
	n := 0
	for _, ev := range x.History {
		if d := ev.StateEnteredEventDetails; d != nil && (state == "" || aws.ToString(d.Name) == state) {
			n++
		}
	}
	return n
}

// nested returns the executions x started as nested executions
// (startExecution.sync:2), and theirs, in the order they were started.
func nested(t *testing.T, x *localrun.Execution) []*localrun.Execution {
	t.Helper()
	var out []*localrun.Execution
	for _, ev := range x.History {
		d := ev.TaskSubmittedEventDetails
		if d == nil || aws.ToString(d.ResourceType) != "states" {
			continue
		}
		var started struct{ ExecutionArn string }
		if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &started); err != nil || started.ExecutionArn == "" {
			t.Fatalf("a nested execution's start without its ARN: %v %s", err, aws.ToString(d.Output))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		child, err := env.Wait(ctx, started.ExecutionArn, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, child)
		out = append(out, nested(t, child)...)
	}
	return out
}

// countEnteredNested counts as countEntered does, in x and every execution
// it started.
func countEnteredNested(t *testing.T, x *localrun.Execution, state string) int {
	n := countEntered(x, state)
	for _, c := range nested(t, x) {
		n += countEntered(c, state)
	}
	return n
}

func objectExists(t *testing.T, key string) bool {
	t.Helper()
	_, err := env.S3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	return err == nil
}

func TestBackupSucceeds(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	if x.Output["entityCount"] != 350.0 || x.Output["sha256"] == nil || x.Output["bytes"].(float64) <= 0 {
		t.Fatalf("output %v", x.Output)
	}
	if !objectExists(t, x.Output["key"].(string)) || !objectExists(t, x.Output["manifestKey"].(string)) {
		t.Error("archive or manifest missing in S3")
	}
}

// A backup of the staged version says so in its manifest and leaves the
// catalog's verified (published) version alone.
func TestBackupOfStagedVersion(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	const staged = "979e9e13a3d58372148f58e6258b72b6"
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "isStaging": true})
	if x.Status != sfntypes.ExecutionStatusSucceeded || x.Output["entityCount"] != 362.0 {
		t.Fatalf("status %s: %s %s, output %v", x.Status, x.Error, x.Cause, x.Output)
	}
	m, err := archive.ReadManifest(context.Background(), env.S3, env.Bucket, x.Output["manifestKey"].(string))
	if err != nil || !m.Staging || m.VersionJobID != staged {
		t.Errorf("manifest: %v, staging %v, version %s", err, m.Staging, m.VersionJobID)
	}
	rec, err := catalog.New(env.S3, env.Bucket, "").Get(context.Background(), catalog.ID{AccessID: accessID, Name: "FourthCoffeeSample"})
	if err != nil || rec.VerifiedVersion == staged {
		t.Errorf("catalog record: %v; verified version %q, want not the staged one", err, rec.VerifiedVersion)
	}
}

func TestBackupOfAbortedJobFails(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultAbort, Message: "Export failed on the service side."})
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "JobAborted" || !strings.Contains(x.Cause, "Export failed") {
		t.Fatalf("status %s error %q cause %q", x.Status, x.Error, x.Cause)
	}
	if countEntered(x, "CopyToS3") != 0 {
		t.Error("an aborted job was copied")
	}
}

func TestBackupRetriesThrottling(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	// Retry-After beyond what the client waits out itself: the state
	// machine's Retry takes over.
	env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 429, RetryAfter: 120, Times: 2})
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries"})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	failures := 0
	for _, ev := range x.History {
		if d := ev.LambdaFunctionFailedEventDetails; d != nil && aws.ToString(d.Error) == "Throttled" {
			failures++
		}
		if d := ev.TaskFailedEventDetails; d != nil && aws.ToString(d.Error) == "Throttled" {
			failures++
		}
	}
	if failures != 2 {
		t.Errorf("%d throttled attempts in the history, want 2", failures)
	}
}

func TestBackupOfSlowJob(t *testing.T) {
	setTiming(t, sdsemu.Timing{DownloadJobDuration: -1, CompleteAfterPolls: 5})
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	if n := countEntered(x, "CheckStatus"); n != 5 {
		t.Errorf("%d status checks, want 5", n)
	}
	if n := countEntered(x, "WaitForJob"); n != 5 {
		t.Errorf("%d waits, want 5", n)
	}
}

// A job that takes the documented worst case of 12 hours costs fewer than
// 200 state transitions: the waits (scaled to zero here) back off from 15 s
// to 15 min. The schedule is the one the state machine ran: a first
// backup that polls longer than 12 hours needs reads the waits checkstatus
// returned; a second, done after just as many polls as 12 hours take on
// that schedule, is counted.
func TestBackoffBoundsTransitions(t *testing.T) {
	waitsOf := func(x *localrun.Execution) []int {
		var waits []int
		for _, ev := range x.History {
			if d := ev.StateEnteredEventDetails; d != nil && aws.ToString(d.Name) == "WaitForJob" {
				var in struct{ NextWaitSeconds int }
				if err := json.Unmarshal([]byte(aws.ToString(d.Input)), &in); err != nil {
					t.Fatal(err)
				}
				waits = append(waits, in.NextWaitSeconds)
			}
		}
		return waits
	}
	// 60 polls: more than a schedule within the transition budget needs.
	setTiming(t, sdsemu.Timing{DownloadJobDuration: -1, CompleteAfterPolls: 60})
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	waits := waitsOf(x)
	polls, waited := 0, 0
	for polls < len(waits) && waited < 12*3600 {
		waited += waits[polls]
		polls++
	}
	if waited < 12*3600 {
		t.Fatalf("60 polls wait %d s in all, less than 12 hours: waits %v", waited, waits)
	}
	// A one-minute job is noticed within a minute of finishing: the first
	// check at or after 60 s comes by 120 s.
	for at, i := 0, 0; i < len(waits); i++ {
		if at += waits[i]; at >= 60 {
			if at > 120 {
				t.Errorf("a job done at 60 s is first seen at %d s (waits %v)", at, waits[:i+1])
			}
			break
		}
	}

	setTiming(t, sdsemu.Timing{DownloadJobDuration: -1, CompleteAfterPolls: polls})
	x = run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	total := 0
	for _, w := range waitsOf(x) {
		total += w
	}
	transitions := countEntered(x, "")
	t.Logf("12-hour job: %d polls, %d s of waits, %d state transitions, %d history events", polls, total, transitions, len(x.History))
	if total < 12*3600 {
		t.Errorf("the waits add up to %d s, less than the 12 hours simulated", total)
	}
	if transitions >= 200 {
		t.Errorf("%d state transitions, want fewer than 200", transitions)
	}
}

func TestDeleteWithBackupFirst(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	env.Emulator.ResetRequests()
	x := run(t, "delete", map[string]any{"accessId": transitAccessID, "dataSourceName": "Transit", "confirm": "Transit", "masterKeySecretId": transitSecret})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	var lastDownload, deleted time.Time
	for _, r := range env.Emulator.Requests() {
		switch r.Operation {
		case sdsemu.OpDownloadData:
			lastDownload = r.Time
		case sdsemu.OpDelete:
			deleted = r.Time
		}
	}
	if lastDownload.IsZero() || deleted.IsZero() || !lastDownload.Before(deleted) {
		t.Errorf("export read at %v, delete sent at %v: the archive must exist before the delete", lastDownload, deleted)
	}
	if _, ok := env.Emulator.DataSource(transitAccessID, "Transit"); ok {
		t.Error("the data source still exists")
	}
	if n := countEnteredNested(t, x, "CopyToS3"); n != 1 {
		t.Errorf("%d copies", n)
	}
}

func TestDeleteRefusedWithoutConfirm(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	env.Emulator.ResetRequests()
	x := run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "confirm": "FourthCoffee"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" {
		t.Fatalf("status %s error %s", x.Status, x.Error)
	}
	if n := len(env.Emulator.Requests()); n != 0 {
		t.Errorf("%d SDS requests for an unconfirmed delete", n)
	}
}

func TestDeleteKeepsDataWhenBackupFails(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultTruncate, Bytes: 1000, Times: -1})
	x := run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries", "confirm": "FourthCoffeeRoasteries"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "SdsUnavailable" {
		t.Fatalf("status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	if _, ok := env.Emulator.DataSource(accessID, "FourthCoffeeRoasteries"); !ok {
		t.Error("the data source was deleted although its backup failed")
	}
	if countEntered(x, "Delete") != 0 {
		t.Error("the delete step ran")
	}
}

// noTotal makes EmptyPlaces' download jobs give no entity total, so that
// its archive cannot be verified.
func noTotal(t *testing.T) {
	t.Helper()
	if err := env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Path: "/EmptyPlaces", Kind: sdsemu.FaultNoTotal, Times: -1}); err != nil {
		t.Fatal(err)
	}
}

// TestBackupEmptyDataSource: a data source without entities is backed up
// as verified (its job's total of 0 and the export agree) and converted.
func TestBackupEmptyDataSource(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	x := run(t, "backup", map[string]any{"accessId": transitAccessID, "dataSourceName": "EmptyPlaces", "masterKeySecretId": transitSecret})
	mustSucceed(t, x)
	if x.Output["verified"] != true || x.Output["entityCount"] != 0.0 {
		t.Errorf("output %v, want a verified archive of 0 entities", x.Output)
	}
	if key, _ := x.Output["manifestKey"].(string); !objectExists(t, key) {
		t.Errorf("no manifest %q", key)
	}
}

// TestBackupUnverifiedFails: an archive that is stored but not verified
// ends the backup in the distinct ArchiveUnverified failure, not retried,
// with the archive and its manifest kept and the reasons in the cause.
func TestBackupUnverifiedFails(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	noTotal(t)
	x := run(t, "backup", map[string]any{"accessId": transitAccessID, "dataSourceName": "EmptyPlaces", "masterKeySecretId": transitSecret})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ArchiveUnverified" || !strings.Contains(x.Cause, "no total") {
		t.Fatalf("status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	if n := countEntered(x, "CopyToS3"); n != 1 {
		t.Errorf("CopyToS3 entered %d times; an unverified archive is not retried", n)
	}
	m := regexp.MustCompile(`s3://[^/]+/(\S+\.xml) with its manifest (\S+\.json)`).FindStringSubmatch(x.Cause)
	if m == nil || !objectExists(t, m[1]) || !objectExists(t, m[2]) {
		t.Errorf("the cause does not name a stored archive and manifest: %s", x.Cause)
	}
}

// TestDeleteRefusedOnUnverifiedBackup: a delete whose backup is stored but
// not verified does not delete; the archive is kept and the reasons are
// in the error.
func TestDeleteRefusedOnUnverifiedBackup(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	noTotal(t)
	env.Emulator.ResetRequests()
	x := run(t, "delete", map[string]any{"accessId": transitAccessID, "dataSourceName": "EmptyPlaces", "confirm": "EmptyPlaces", "masterKeySecretId": transitSecret})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ArchiveUnverified" || !strings.Contains(x.Cause, "not verified") {
		t.Fatalf("status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	if _, ok := env.Emulator.DataSource(transitAccessID, "EmptyPlaces"); !ok {
		t.Error("the data source was deleted although its backup is unverified")
	}
	if countEntered(x, "Delete") != 0 {
		t.Error("the delete step ran")
	}
	for _, r := range env.Emulator.Requests() {
		if r.Operation == sdsemu.OpDelete {
			t.Error("a DELETE reached SDS")
		}
	}
}

func TestSetPublic(t *testing.T) {
	setTiming(t, sdsemu.Timing{JobDuration: -1, CompleteAfterPolls: 2})
	for _, public := range []bool{true, false} {
		x := run(t, "setpublic", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries", "public": public})
		if x.Status != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("public=%v: status %s: %s %s", public, x.Status, x.Error, x.Cause)
		}
		if ds, _ := env.Emulator.DataSource(accessID, "FourthCoffeeRoasteries"); ds.IsPublic != public {
			t.Errorf("IsPublic = %v after setting %v", ds.IsPublic, public)
		}
	}
}

func TestScheduledBackupWithOneFailure(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	noTotal(t)
	x := run(t, "scheduled-backup", map[string]any{
		"dataSources": []map[string]any{
			{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"},
			{"accessId": accessID, "dataSourceName": "NoSuchSource"},
			{"accessId": transitAccessID, "dataSourceName": "EmptyPlaces", "masterKeySecretId": transitSecret},
			{"accessId": accessID}, // no name: refused, the others go on
		},
		"maxConcurrency": 2,
	})
	// The run fails, so that the alarm fires; its cause lists the failures,
	// the Map state's output in the history every result.
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "BackupsFailed" {
		t.Fatalf("status %s error %s: %s", x.Status, x.Error, x.Cause)
	}
	type result struct{ DataSourceName, Status, Key, Error string }
	var failures []result
	if err := json.Unmarshal([]byte(x.Cause), &failures); err != nil {
		t.Fatalf("cause is not the JSON list of failures: %v: %s", err, x.Cause)
	}
	var results []result
	for _, ev := range x.History {
		if d := ev.StateExitedEventDetails; d != nil && aws.ToString(d.Name) == "BackupEach" {
			var out struct{ Results []result }
			json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
			results = out.Results
		}
	}
	summarize := func(rs []result) []string {
		var got []string
		for _, r := range rs {
			got = append(got, r.DataSourceName+":"+r.Status+":"+r.Error)
			if r.Status == "Archived" && !objectExists(t, r.Key) {
				t.Errorf("%s: archive %s missing", r.DataSourceName, r.Key)
			}
		}
		return got
	}
	// EmptyPlaces is archived but unverified (its job gives no entity
	// total): the run counts it as a failure.
	if got, want := summarize(results), []string{"FourthCoffeeSample:Archived:", "NoSuchSource:Failed:DataSourceNotFound", "EmptyPlaces:Failed:ArchiveUnverified", ":Failed:InvalidInput"}; !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if got, want := summarize(failures), []string{"NoSuchSource:Failed:DataSourceNotFound", "EmptyPlaces:Failed:ArchiveUnverified", ":Failed:InvalidInput"}; !slices.Equal(got, want) {
		t.Errorf("failures in the cause %v, want %v", got, want)
	}
}

func TestScheduledBackupAllArchived(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	x := run(t, "scheduled-backup", map[string]any{"dataSources": []map[string]any{
		{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"},
		{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries"},
	}})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	if results, _ := x.Output["results"].([]any); len(results) != 2 {
		t.Errorf("output %v, want two results", x.Output)
	}
}

// A staged-only delete archives the staged version first.
func TestDeleteStagedArchivesStagedVersion(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	x := run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": scratchB, "confirm": scratchB, "isStaging": true})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	backup, _ := x.Output["backup"].(map[string]any)
	if backup["entityCount"] != 45.0 {
		t.Errorf("archived %v entities, want the staged version's 45", backup["entityCount"])
	}
	ds, ok := env.Emulator.DataSource(accessID, scratchB)
	if !ok || ds.Staged != nil {
		t.Errorf("published kept: %v; staged gone: %v", ok, ds.Staged == nil)
	}
}

// Anything but a boolean in backupFirst or isStaging is refused before any
// backup or deletion.
func TestDeleteRefusesNonBooleanFlags(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	for _, in := range []map[string]any{
		{"backupFirst": "true"}, {"backupFirst": nil}, {"backupFirst": 0}, {"isStaging": "yes"},
	} {
		env.Emulator.ResetRequests()
		input := map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "confirm": "FourthCoffeeSample"}
		for k, v := range in {
			input[k] = v
		}
		x := run(t, "delete", input)
		if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" {
			t.Errorf("%v: status %s error %s", in, x.Status, x.Error)
		}
		if n := len(env.Emulator.Requests()); n != 0 {
			t.Errorf("%v: %d SDS requests", in, n)
		}
	}
}

// masterKeys are the keys, in the forms they could take, that no execution,
// history event, function log line or invocation record may hold.
var masterKeys = []string{localrun.DefaultMasterKey, "sdsemu-master-key-transit", url.QueryEscape(localrun.DefaultMasterKey)}

// keysLeft scans the inputs, outputs, errors, causes and history of every
// execution of e's state machines, and e's function log lines and invocation
// records, for a master key. A scan of fewer than minimum executions or log
// lines is an error too: it would prove nothing.
func keysLeft(ctx context.Context, e *localrun.Env, minimum int) error {
	var found []error
	scan := func(where, text string) {
		for _, k := range masterKeys {
			if strings.Contains(text, k) {
				found = append(found, fmt.Errorf("%s contains a master key", where))
			}
		}
	}
	executions := 0
	for _, arn := range e.StateMachines {
		p := sfn.NewListExecutionsPaginator(e.SFN, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, x := range page.Executions {
				executions++
				d, err := e.Describe(ctx, aws.ToString(x.ExecutionArn))
				if err != nil {
					return err
				}
				scan("execution input/output", aws.ToString(d.Input)+aws.ToString(d.Output)+aws.ToString(d.Error)+aws.ToString(d.Cause))
				hist, err := e.History(ctx, aws.ToString(x.ExecutionArn))
				if err != nil {
					return err
				}
				b, err := json.Marshal(hist)
				if err != nil {
					return err
				}
				scan("execution history", string(b))
			}
		}
	}
	lines := e.Stack.Lambda.Logs()
	for _, l := range lines {
		scan("function log line", l.Text)
	}
	for _, inv := range e.Stack.Lambda.Invocations() {
		b, _ := json.Marshal(inv)
		scan("Lambda invocation record", string(b))
	}
	if executions < minimum || len(lines) < minimum {
		found = append(found, fmt.Errorf("too little to scan for master keys: %d executions, %d log lines", executions, len(lines)))
	}
	return errors.Join(found...)
}

// A job that never finishes fails the execution with JobTimedOut once the
// deadline has passed (one second here, 13 hours by default).
func TestDeadline(t *testing.T) {
	ctx := context.Background()
	cfg := sdsemu.DefaultConfig()
	cfg.Manual = true
	e, err := localrun.Start(ctx, localrun.Options{RepoRoot: "..", Emulator: cfg, WaitScale: 0.01,
		FunctionEnv: map[string]string{"JOB_DEADLINE_SECONDS": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// This deployment is not the shared one that TestMain scans.
	defer func() {
		if err := keysLeft(context.Background(), e, 1); err != nil {
			t.Error(err)
		}
	}()
	x, err := e.Run(ctx, "backup", "deadline", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"})
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "JobTimedOut" {
		t.Fatalf("status %s error %q cause %q", x.Status, x.Error, x.Cause)
	}
}

// A failed backup run as a nested execution fails its parent with the
// backup's own error and cause, not with the wrapper around them
// (States.TaskFailed and the child's description): the delete's error
// and the nightly run's list of failures name what went wrong.
func TestNestedBackupFailureSurfaces(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	env.Emulator.AddFault(sdsemu.Fault{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultAbort, Message: "Export failed on the service side."})
	x := run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries", "confirm": "FourthCoffeeRoasteries"})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "JobAborted" || !strings.Contains(x.Cause, "Export failed on the service side.") {
		t.Fatalf("delete: status %s error %q cause %q, want FAILED JobAborted with the service's message", x.Status, x.Error, x.Cause)
	}
	if _, ok := env.Emulator.DataSource(accessID, "FourthCoffeeRoasteries"); !ok {
		t.Error("the data source was deleted although its backup failed")
	}
	children := nested(t, x)
	if len(children) != 1 {
		t.Fatalf("%d nested executions, want one backup", len(children))
	}
	if c := children[0]; c.Error != x.Error || c.Cause != x.Cause {
		t.Errorf("delete failed with %q %q, its backup with %q %q", x.Error, x.Cause, c.Error, c.Cause)
	}

	x = run(t, "scheduled-backup", map[string]any{"dataSources": []map[string]any{
		{"accessId": accessID, "dataSourceName": "NoSuchSource"},
		{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"},
		{"accessId": accessID, "dataSourceName": "NoSuchSourceEither"},
	}})
	var failures []struct{ DataSourceName, Error, Cause string }
	if err := json.Unmarshal([]byte(x.Cause), &failures); err != nil || x.Error != "BackupsFailed" {
		t.Fatalf("scheduled: error %q, cause not the list of failures: %v: %s", x.Error, err, x.Cause)
	}
	children = nested(t, x)
	if len(children) != 3 {
		t.Fatalf("%d nested executions, want three backups", len(children))
	}
	childFailures := map[string][2]string{}
	names := map[string]bool{}
	for _, c := range children {
		name := c.ARN[strings.LastIndex(c.ARN, ":")+1:]
		if len(name) > 80 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" || names[name] {
			t.Errorf("nested execution name %q: want unique, at most 80 letters, digits, - or _", name)
		}
		names[name] = true
		if c.Status == sfntypes.ExecutionStatusFailed {
			childFailures[c.Cause] = [2]string{c.Error, c.Cause}
		}
	}
	if len(failures) != 2 || len(childFailures) != 2 {
		t.Fatalf("%d failures listed, %d backups failed; want 2 and 2", len(failures), len(childFailures))
	}
	for _, f := range failures {
		if f.Error != "DataSourceNotFound" || !strings.Contains(f.Cause, f.DataSourceName) || childFailures[f.Cause] != [2]string{f.Error, f.Cause} {
			t.Errorf("%s listed as %q %q; the backups failed with %v", f.DataSourceName, f.Error, f.Cause, childFailures)
		}
	}
}

// State transitions (states entered) and history events of a delete with
// backup and of nightly runs of N data sources, nested backups included.
func TestNestedTransitions(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	count := func(x *localrun.Execution) (int, int, int) {
		transitions, events, all := countEntered(x, ""), len(x.History), nested(t, x)
		for _, c := range all {
			transitions += countEntered(c, "")
			events += len(c.History)
		}
		return transitions, events, len(all)
	}
	x := run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": scratchD, "confirm": scratchD})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("delete: status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	tr, ev, n := count(x)
	t.Logf("delete with backup: %d state transitions, %d history events, %d executions (parent %d transitions)", tr, ev, n+1, countEntered(x, ""))
	for _, n := range []int{1, 2, 4} {
		var sources []map[string]any
		for range n {
			sources = append(sources, map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample"})
		}
		x := run(t, "scheduled-backup", map[string]any{"dataSources": sources})
		if x.Status != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("scheduled: status %s: %s %s", x.Status, x.Error, x.Cause)
		}
		tr, ev, k := count(x)
		if k != n {
			t.Errorf("%d nested backups for %d data sources", k, n)
		}
		t.Logf("nightly run of %d: %d state transitions, %d history events, %d executions (parent %d transitions)", n, tr, ev, k+1, countEntered(x, ""))
	}
}
