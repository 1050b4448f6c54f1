package task_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// TestStalledSDSBodies: an export or status answer that stops arriving
// fails after SDS_TIMEOUT of silence with SdsUnavailable, and a copy's
// upload is aborted: nothing is left in S3.
func TestStalledSDSBodies(t *testing.T) {
	idle := 300 * time.Millisecond
	if os.Getenv("SDSOPS_MEASURE_DEFAULT_TIMEOUT") != "" {
		idle = 30 * time.Second // the production SDS_TIMEOUT default
	}
	f := newFixture(t, masterKey, nil, sds.WithTimeout(idle))
	st := f.backupToCompleted()

	f.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultStall, Bytes: 5000, Times: -1})
	start := time.Now()
	_, typ, msg := f.invoke("copytos3", st)
	took := time.Since(start)
	if typ != "SdsUnavailable" || !strings.Contains(msg, "no data for") {
		t.Fatalf("stalled export: %s: %s", typ, msg)
	}
	// Three attempts of the client's retry policy, each noticed after idle.
	if took > 3*idle+5*time.Second {
		t.Errorf("stalled export reported after %s", took)
	}
	t.Logf("stalled export: %s after %s (SDS timeout %s)", typ, took.Round(time.Millisecond), idle)
	if objects, uploads := objectCount(t, f.bucket); objects != 0 || uploads != 0 {
		t.Errorf("S3 holds %d objects, %d multipart uploads after a stalled copy", objects, uploads)
	}
	f.emu.ClearFaults()

	f.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultStall, Bytes: 30, Times: -1})
	start = time.Now()
	if _, typ, msg := f.invoke("checkstatus", st); typ != "SdsUnavailable" || time.Since(start) > 3*idle+5*time.Second {
		t.Fatalf("stalled status: %s: %s after %s", typ, msg, time.Since(start))
	}
}

// TestStalledSDSWithinTheFunctionTimeout: whatever SDS request of a
// function stalls, with the production SDS_TIMEOUT (30 s) and retry policy
// and less time left than that, the function ends with SdsUnavailable
// before its deadline, never with FunctionTimeout.
//
// SDSOPS_MEASURE_DEFAULT_TIMEOUT=1 gives the functions the default timeout
// of template.yaml (60 s) to measure the production figure.
func TestStalledSDSWithinTheFunctionTimeout(t *testing.T) {
	lambdaTimeout := 5 * time.Second // the function stops itself 2 s before
	if os.Getenv("SDSOPS_MEASURE_DEFAULT_TIMEOUT") != "" {
		lambdaTimeout = 60 * time.Second
	}
	f := newFixture(t, masterKey, nil, sds.WithTimeout(sds.DefaultTimeout), sds.WithRetry(sds.DefaultRetry))
	st := f.backupToCompleted()
	key := f.mustInvoke("copytos3", st)["key"].(string)
	load := f.mustInvoke("restore", map[string]any{"action": "load", "archiveKey": key, "targetName": "CoffeeCopy"})
	anyOp := sdsemu.Fault{Op: sdsemu.OpAny, Kind: sdsemu.FaultLatency, Latency: time.Minute, Times: -1}

	for _, tc := range []struct {
		name, function string
		event          any
		fault          sdsemu.Fault
	}{
		{"download status stalls", "checkstatus", st, sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultStall, Bytes: 30, Times: -1}},
		{"load status stalls", "loadstatus", load, sdsemu.Fault{Op: sdsemu.OpLoadStatus, Kind: sdsemu.FaultStall, Bytes: 30, Times: -1}},
		{"download status never answers", "checkstatus", st, anyOp},
		{"load status never answers", "loadstatus", load, anyOp},
		{"startdownload", "startdownload", startEvent(), anyOp},
		{"delete", "delete", map[string]any{"accessId": accessID, "dataSourceName": coffee, "confirm": coffee}, anyOp},
		{"setpublic", "setpublic", map[string]any{"accessId": accessID, "dataSourceName": coffee, "public": false}, anyOp},
		{"publish", "publish", map[string]any{"accessId": accessID, "dataSourceName": coffee}, anyOp},
		{"rollback", "rollback", map[string]any{"dataSourceName": coffee, "jobId": "4ad48f44f879c6da79e22ecfd19ffad4", "confirm": coffee}, anyOp},
		// The emulator notices a client gone from a POST only once it reads
		// the body: a short latency, still longer than the time left.
		{"restore load", "restore", map[string]any{"action": "load", "archiveKey": key, "targetName": "CoffeeCopy2"},
			sdsemu.Fault{Op: sdsemu.OpLoad, Kind: sdsemu.FaultLatency, Latency: 2 * lambdaTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.emu.ClearFaults()
			defer f.emu.ClearFaults()
			if err := f.emu.AddFault(tc.fault); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), lambdaTimeout)
			defer cancel()
			start := time.Now()
			_, typ, msg := f.invokeCtx(ctx, tc.function, tc.event)
			if typ != "SdsUnavailable" {
				t.Fatalf("%s: %s: %s after %s, want SdsUnavailable", tc.function, typ, msg, time.Since(start).Round(time.Millisecond))
			}
			t.Logf("%s: %s after %s (Lambda timeout %s)", tc.function, typ, time.Since(start).Round(time.Millisecond), lambdaTimeout)
		})
	}
}

// TestEchoedKeyRedacted: a service that echoes the request URL, key and
// all, in a job's error message gets it redacted in every result, error
// and log line (the fixture checks them all when the test ends).
func TestEchoedKeyRedacted(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	echo := "Export failed: GET https://spatial.virtualearth.net/REST/v1/Dataflows/DataSourceDownload/x?key=" + masterKey
	st := f.mustInvoke("startdownload", startEvent())
	f.emu.AbortJob(st["jobId"].(string), echo)
	out := f.mustInvoke("checkstatus", st)
	if msg, _ := out["errorMessage"].(string); out["status"] != "Aborted" || !strings.Contains(msg, "key=REDACTED") {
		t.Errorf("checkstatus: %v", out)
	}

	del := f.mustInvoke("delete", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries", "confirm": "FourthCoffeeRoasteries"})
	for _, j := range f.emu.Jobs() {
		if j.Kind == sdsemu.JobDelete {
			f.emu.AbortJob(j.ID, "delete of "+j.DataSourceName+" refused for key="+masterKey)
		}
	}
	out, typ, msg := f.invoke("checkstatus", del)
	if typ != "" {
		if !strings.Contains(msg, "REDACTED") && strings.Contains(msg, "refused") {
			t.Errorf("delete check: %s: %s", typ, msg)
		}
	} else if m, _ := out["errorMessage"].(string); !strings.Contains(m, "REDACTED") {
		t.Errorf("delete check: %v", out)
	}
}

// TestFailedLoadOutputHasNoKey: an aborted load's error log that echoes
// the request URL, key and all, is kept beside the archive in S3 with the
// key removed.
func TestFailedLoadOutputHasNoKey(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	key := f.mustInvoke("copytos3", f.backupToCompleted())["key"].(string)
	job := f.mustInvoke("restore", map[string]any{"action": "load", "archiveKey": key, "targetName": "CoffeeCopy"})
	if err := f.emu.AbortJob(job["jobId"].(string), "The data could not be loaded."); err != nil {
		t.Fatal(err)
	}
	if err := f.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpLoadFailed, Kind: sdsemu.FaultEchoKey}); err != nil {
		t.Fatal(err)
	}
	out := f.mustInvoke("loadstatus", job)
	kept, _ := out["failedOutputKey"].(string)
	if out["status"] != "Aborted" || kept == "" {
		t.Fatalf("loadstatus %v: want Aborted with the failed output kept", out)
	}
	if n := len(f.emu.Faults()); n != 0 {
		t.Fatal("the error log was not read with the echoing fault")
	}
	body, err := getObject(t, f.bucket, kept)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{masterKey, url.QueryEscape(masterKey)} {
		if strings.Contains(string(body), form) {
			t.Errorf("s3://%s/%s holds the master key", f.bucket, kept)
		}
	}
	if !strings.Contains(string(body), "could not be loaded") || !strings.Contains(string(body), "key=REDACTED") {
		t.Errorf("s3://%s/%s does not hold the log with the key redacted:\n%s", f.bucket, kept, body)
	}
}

// TestEntryEventKeys: duplicate keys and keys in another case are refused
// before anything is sent: "DataSourceName" must not override
// "dataSourceName".
func TestEntryEventKeys(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	events := []struct {
		fn, body, want string
	}{
		{"delete", `{"accessId":"` + accessID + `","dataSourceName":"FourthCoffeeSample","confirm":"FourthCoffeeSample","DataSourceName":"FourthCoffeeRoasteries"}`, "differ only in case"},
		{"delete", `{"accessId":"` + accessID + `","DataSourceName":"FourthCoffeeRoasteries","confirm":"FourthCoffeeRoasteries"}`, `must be spelt "dataSourceName"`},
		{"delete", `{"accessId":"` + accessID + `","dataSourceName":"FourthCoffeeSample","dataSourceName":"FourthCoffeeRoasteries","confirm":"FourthCoffeeRoasteries"}`, "appears twice"},
		{"setpublic", `{"accessId":"` + accessID + `","dataSourceName":"FourthCoffeeSample","public":true,"Public":false}`, "differ only in case"},
		{"startdownload", `{"ACCESSID":"` + accessID + `","dataSourceName":"FourthCoffeeSample"}`, "must be spelt"},
		{"checkstatus", `{"accessId":"` + accessID + `","dataSourceName":"FourthCoffeeSample","operation":"delete","status":"Pending","requestedAt":"2026-01-01T00:00:00Z","DataSourceName":"Transit"}`, "differ only in case"},
	}
	for _, ev := range events {
		_, typ, msg := f.invoke(ev.fn, []byte(ev.body))
		if typ != "InvalidInput" || !strings.Contains(msg, ev.want) {
			t.Errorf("%s %s: %s: %s; want InvalidInput (%s)", ev.fn, ev.body, typ, msg, ev.want)
		}
	}
	if n := len(f.emu.Requests()); n != 0 {
		t.Errorf("%d requests reached SDS", n)
	}
}

// TestErrorTypeFixes: a secret too large to be a key is a malformed
// secret; impossible chained counts and dates are the caller's fault.
func TestErrorTypeFixes(t *testing.T) {
	big := newFixture(t, strings.Repeat("k", 64<<10), nil)
	if _, typ, msg := big.invoke("startdownload", startEvent()); typ != "SecretNotFound" {
		t.Errorf("64 KiB secret: %s: %s", typ, msg)
	}

	f := newFixture(t, masterKey, nil)
	st := f.backupToCompleted()
	for field, v := range map[string]any{"totalEntityCount": -1, "createdDate": "0001-01-01T00:00:00Z"} {
		bad := map[string]any{}
		for k, x := range st {
			bad[k] = x
		}
		bad[field] = v
		if _, typ, msg := f.invoke("copytos3", bad); typ != "InvalidInput" {
			t.Errorf("%s %v: %s: %s", field, v, typ, msg)
		}
	}
	if objects, _ := objectCount(t, f.bucket); objects != 0 {
		t.Errorf("%d objects stored", objects)
	}
}

// TestRealServiceShapes: what the real service may send, end to end
// through the functions: a name with '-', a Location-only create answer,
// a ZIP delivery of an export with geography, an errorDetails-only abort.
func TestRealServiceShapes(t *testing.T) {
	f := newFixture(t, masterKey, func(c *sdsemu.Config) {
		c.DownloadEncoding = "zip"
		c.Faults = []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultLocationOnly, Times: -1}}
	})
	ev := map[string]any{"accessId": accessID, "dataSourceName": "Stores-2019"}
	st := f.mustInvoke("startdownload", ev)
	if u, _ := st["statusUrl"].(string); !strings.Contains(u, st["jobId"].(string)) {
		t.Fatalf("status URL %q", u)
	}
	f.completeJobs()
	st = f.mustInvoke("checkstatus", st)
	out := f.mustInvoke("copytos3", st)
	if out["verified"] != true || out["entityCount"].(float64) != 140 {
		t.Fatalf("copy: %v", out)
	}
	raw, err := getObject(t, f.bucket, out["manifestKey"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ContentType string `json:"contentType"`
		Verified    bool   `json:"verified"`
		Delivery    struct {
			Encoding, ContentType string
			Bytes                 int64
		} `json:"delivery"`
	}
	json.Unmarshal(raw, &m)
	t.Logf("manifest of a ZIP delivery: %s", raw)
	if !m.Verified || m.ContentType != "application/xml" || m.Delivery.Encoding != "zip" || m.Delivery.Bytes <= 0 {
		t.Errorf("manifest %s", raw)
	}
	obj, _ := getObject(t, f.bucket, out["key"].(string))
	if !strings.HasPrefix(string(obj), "\ufeff<?xml") || !strings.Contains(string(obj), "POLYGON ((") {
		t.Errorf("stored object is not the XML inside the ZIP: %.40q", obj)
	}

	f.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultErrorDetailsOnly})
	st = f.mustInvoke("startdownload", ev)
	f.emu.AbortJob(st["jobId"].(string), "The data source could not be read.")
	st = f.mustInvoke("checkstatus", st)
	if st["status"] != "Aborted" || st["errorMessage"] != "The data source could not be read." {
		t.Errorf("aborted job: %v", st)
	}
}
