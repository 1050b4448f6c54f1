package sdsemu

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStatusFault(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.DownloadJobDuration = 0 })
	self := linkURL(t, e.createDownload(fcAccess, fcName, fcMaster), "self", "")
	if err := e.emu.AddFault(Fault{Op: OpDownloadStatus, Kind: FaultStatus, Status: 503, Times: 3, RetryAfter: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := e.get(e.localPath(self) + "?key=" + fcMaster + "&o=xml")
		mustStatus(t, r, http.StatusServiceUnavailable)
		x := parseXML(t, r.body)
		if r.header.Get("Retry-After") != "2" || x.child("StatusCode").value() != "503" ||
			x.child("AuthenticationResultCode").value() != "ValidCredentials" || x.child("ErrorDetails", "string").value() == "" {
			t.Errorf("fault %d: %s %v", i+1, r.body, r.header)
		}
	}
	if got := e.status(self).get("status").str(); got != "Completed" {
		t.Errorf("after the fault: %s", got)
	}
	if n := len(e.emu.Faults()); n != 0 {
		t.Errorf("%d faults left", n)
	}
	if rec := e.emu.Requests()[1]; rec.Fault != "status" || rec.Status != 503 || rec.Operation != OpDownloadStatus {
		t.Errorf("request log: %+v", rec)
	}
}

func TestStatusFaultHappensBeforeProcessing(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.emu.AddFault(
		Fault{Op: OpCreateDownload, Kind: FaultStatus, Status: 500},
		Fault{Op: OpDelete, Kind: FaultStatus, Status: 429, RetryAfter: 7, Message: "Slow down."},
	); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusInternalServerError)
	r := e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster)
	mustStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") != "7" || parseJSON(t, r.body).get("errorDetails", 0).str() != "Slow down." {
		t.Errorf("429 fault: %v %s", r.header, r.body)
	}
	if n := len(e.emu.Jobs()); n != 0 {
		t.Errorf("faulted requests created %d jobs", n)
	}
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
}

func TestFaultPathFilterAndWildcard(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.emu.AddFault(Fault{Op: OpAny, Path: "/transit", Kind: FaultStatus, Status: 503, Times: -1}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustStatus(t, e.get(createPath(trAccess, trName, trMaster)), http.StatusServiceUnavailable)
		mustStatus(t, e.get("/REST/v1/data/"+trAccess+"/"+trName+"?key="+trMaster), http.StatusServiceUnavailable)
	}
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
	if f := e.emu.Faults(); len(f) != 1 || f[0].Times != -1 {
		t.Errorf("forever fault: %+v", f)
	}
	e.emu.ClearFaults()
	mustStatus(t, e.get(createPath(trAccess, trName, trMaster)), http.StatusCreated)
}

func TestLatencyFault(t *testing.T) {
	e := newEnv(t, nil)
	const delay = 150 * time.Millisecond
	if err := e.emu.AddFault(Fault{Op: OpListJobs, Kind: FaultLatency, Latency: delay}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs?key="+fcMaster), http.StatusOK)
	if took := time.Since(start); took < delay {
		t.Errorf("first request took %v, want at least %v", took, delay)
	}
	start = time.Now()
	mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs?key="+fcMaster), http.StatusOK)
	if took := time.Since(start); took >= delay {
		t.Errorf("second request took %v: latency fault fired twice", took)
	}
}

func TestLatencyFaultGivesUpWithTheClient(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.emu.AddFault(Fault{Op: OpListJobs, Kind: FaultLatency, Latency: time.Minute}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := client.Get(e.srv.URL + "/REST/v1/Dataflows/ListJobs?key=" + fcMaster); err == nil {
		t.Fatal("expected a client timeout")
	}
	// The server side returns promptly; Close in the cleanup would hang otherwise.
}

func TestAbortFault(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.DownloadJobDuration = time.Second; c.JobDuration = time.Second })
	if err := e.emu.AddFault(
		Fault{Op: OpCreateDownload, Kind: FaultAbort, Times: 2, Message: "Download failed."},
		Fault{Op: OpDelete, Kind: FaultAbort},
	); err != nil {
		t.Fatal(err)
	}
	var selfs []string
	for range 3 {
		selfs = append(selfs, linkURL(t, e.createDownload(fcAccess, fcName, fcMaster), "self", ""))
	}
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+trAccess+"/"+trName+"?key="+trMaster), http.StatusAccepted)
	if st := e.status(selfs[0]).get("status").str(); st != "Pending" {
		t.Errorf("an aborting job is Pending until its time: %s", st)
	}
	e.clock.Advance(time.Second)
	for i, want := range []string{"Aborted", "Aborted", "Completed"} {
		st := e.status(selfs[i])
		if st.get("status").str() != want {
			t.Errorf("job %d: %s, want %s", i, st.get("status").str(), want)
		}
		if want == "Aborted" && st.get("errorMessage").str() != "Download failed." {
			t.Errorf("job %d: errorMessage %q", i, st.get("errorMessage").str())
		}
	}
	jobs := listJobs(t, e, trMaster)
	if jobs[0].get("status").str() != "Aborted" || jobs[0].get("errorMessage").str() == "" {
		t.Errorf("aborted delete job: %v", jobs[0].shape())
	}
	if _, ok := e.emu.DataSource(trAccess, trName); !ok {
		t.Error("an aborted delete removed the data source")
	}
}

// completedOutput returns the path of a completed download's data.
func completedOutput(t *testing.T, e *env, accessID, name, key string) string {
	t.Helper()
	res := e.createDownload(accessID, name, key)
	if err := e.emu.CompleteJob(res.get("id").str()); err != nil {
		t.Fatal(err)
	}
	return e.localPath(linkURL(t, res, "self", "")) + "/output/succeeded?key=" + key
}

// rawGet sends a GET and returns the response head and everything the server sent after it,
// until the connection ends.
func rawGet(t *testing.T, e *env, path string) (*http.Response, []byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+e.srv.Listener.Addr().String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	return res, rest, err
}

func TestTruncateFault(t *testing.T) {
	e := newEnv(t, nil)
	out := completedOutput(t, e, fcAccess, fcName, fcMaster)
	full := e.get(out)
	mustStatus(t, full, http.StatusOK)

	if err := e.emu.AddFault(Fault{Op: OpDownloadData, Kind: FaultTruncate, Bytes: 1000}); err != nil {
		t.Fatal(err)
	}
	res, err := e.srv.Client().Get(e.srv.URL + out)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want unexpected EOF", err)
	}
	if res.ContentLength != int64(len(full.body)) || !bytes.Equal(body, full.body[:1000]) {
		t.Errorf("announced %d, got %d bytes", res.ContentLength, len(body))
	}
	if rec := e.emu.Requests(); rec[len(rec)-1].Fault != "truncate" {
		t.Errorf("request log: %+v", rec[len(rec)-1])
	}
	mustStatus(t, e.get(out), http.StatusOK) // once only
}

func TestResetFault(t *testing.T) {
	e := newEnv(t, nil)
	out := completedOutput(t, e, fcAccess, fcName, fcMaster)
	size := len(e.get(out).body)
	if err := e.emu.AddFault(Fault{Op: OpDownloadData, Kind: FaultReset, Bytes: 2000}); err != nil {
		t.Fatal(err)
	}
	res, rest, err := rawGet(t, e, out)
	if err == nil {
		t.Error("no error after the reset")
	}
	if res.StatusCode != 200 || res.ContentLength != int64(size) || len(rest) > 2000 {
		t.Errorf("status %d, announced %d, received %d bytes", res.StatusCode, res.ContentLength, len(rest))
	}
}

func TestOverlongFault(t *testing.T) {
	e := newEnv(t, nil)
	out := completedOutput(t, e, fcAccess, fcName, fcMaster)
	full := e.get(out).body
	if err := e.emu.AddFault(Fault{Op: OpDownloadData, Kind: FaultOverlong, Bytes: 500, Times: 2}); err != nil {
		t.Fatal(err)
	}
	res, rest, err := rawGet(t, e, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.ContentLength != 500 || !bytes.Equal(rest, full) {
		t.Errorf("announced %d, sent %d bytes (full body is %d)", res.ContentLength, len(rest), len(full))
	}
	// An HTTP client believes the header and sees a short, clean body.
	r := e.get(out)
	mustStatus(t, r, http.StatusOK)
	if !bytes.Equal(r.body, full[:500]) {
		t.Errorf("client read %d bytes", len(r.body))
	}
}

func TestBodyFaultsWaitForADownload(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.emu.AddFault(Fault{Op: OpDownloadData, Kind: FaultTruncate, Bytes: 10}); err != nil {
		t.Fatal(err)
	}
	res := e.createDownload(fcAccess, fcName, fcMaster)
	out := e.localPath(linkURL(t, res, "self", "")) + "/output/succeeded?key=" + fcMaster
	mustStatus(t, e.get(out), http.StatusBadRequest) // pending: the fault stays armed
	if n := len(e.emu.Faults()); n != 1 {
		t.Fatalf("%d faults armed", n)
	}
}

func TestFaultsFromConfigAndFile(t *testing.T) {
	data, err := readFile("testdata/faults.json")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := ParseFaults(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 || fs[2].Latency != 50*time.Millisecond || fs[0].RetryAfter != 1 || fs[1].Bytes != 4096 {
		t.Fatalf("parsed %+v", fs)
	}
	e := newEnv(t, func(c *Config) { c.Faults = fs })
	if got := len(e.emu.Faults()); got != 3 {
		t.Errorf("%d faults armed at start", got)
	}
	start := time.Now()
	e.createDownload(fcAccess, fcName, fcMaster)
	if time.Since(start) < 50*time.Millisecond {
		t.Error("latency fault from the file did not fire")
	}
}

func TestParseFaultsErrors(t *testing.T) {
	tests := map[string]string{
		"unknown op":          `[{"op":"geocode","kind":"status","status":503}]`,
		"unknown kind":        `[{"op":"*","kind":"explode"}]`,
		"status out of range": `[{"op":"*","kind":"status","status":302}]`,
		"abort on info":       `[{"op":"info","kind":"abort"}]`,
		"truncate on status":  `[{"op":"downloadStatus","kind":"truncate","bytes":5}]`,
		"bad latency":         `[{"op":"*","kind":"latency","latency":"soon"}]`,
		"no latency":          `[{"op":"*","kind":"latency"}]`,
		"unknown field":       `[{"op":"*","kind":"status","status":503,"count":3}]`,
		"times below -1":      `[{"op":"*","kind":"status","status":503,"times":-2}]`,
		"not an array":        `{"op":"*","kind":"status","status":503}`,
		"stall on delete":     `[{"op":"delete","kind":"stall"}]`,
		"echoKey on status":   `[{"op":"loadStatus","kind":"echoKey"}]`,
		"zip on status":       `[{"op":"downloadStatus","kind":"zip"}]`,
		"location on status":  `[{"op":"downloadStatus","kind":"locationOnly"}]`,
		"details on create":   `[{"op":"createDownload","kind":"errorDetailsOnly"}]`,
		"no total on data":    `[{"op":"downloadData","kind":"noTotal"}]`,
		"negative stall":      `[{"op":"downloadData","kind":"stall","bytes":-1}]`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseFaults([]byte(in)); err == nil {
				t.Errorf("accepted %s", in)
			}
		})
	}
	fs, err := ParseFaults([]byte(`[{"op":"*","kind":"latency","latency":250}]`))
	if err != nil || fs[0].Latency != 250*time.Millisecond {
		t.Errorf("latency in milliseconds: %v %+v", err, fs)
	}
	// Faults round-trip through JSON, as the admin API shows them.
	out, _ := fs[0].MarshalJSON()
	if !strings.Contains(string(out), `"latency":"250ms"`) {
		t.Errorf("marshalled %s", out)
	}
}

func TestRequestLogRedactsKeys(t *testing.T) {
	e := newEnv(t, nil)
	e.get("/REST/v1/Dataflows/ListJobs")
	e.get("/REST/v1/Dataflows/ListJobs?o=xml&KEY=" + fcMaster)
	e.get("/REST/v1/data?key=" + fcQuery + "&$format=json")
	e.get("/REST/v1/data?key=" + contosoAccountKey)
	e.get("/REST/v1/data?%6Bey=" + unknownKey) // an escaped parameter name is still the key
	recs := e.emu.Requests()
	want := []struct {
		class KeyClass
		query string
	}{
		{KeyNone, ""},
		{KeyMaster, "o=xml&KEY=" + Redacted},
		{KeyQuery, "key=" + Redacted + "&$format=json"},
		{KeyAccount, "key=" + Redacted},
		{KeyUnknown, "key=" + Redacted},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records", len(recs))
	}
	for i, w := range want {
		if recs[i].KeyClass != w.class || recs[i].Query != w.query || recs[i].Method != "GET" || recs[i].Status == 0 {
			t.Errorf("record %d: %+v, want class %s query %q", i, recs[i], w.class, w.query)
		}
	}
	if !strings.Contains(e.log.String(), "key=REDACTED") || !strings.Contains(e.log.String(), "status=401") {
		t.Errorf("log output: %s", e.log.String())
	}
	e.emu.ResetRequests()
	if len(e.emu.Requests()) != 0 {
		t.Error("ResetRequests left records")
	}
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, nil)
	admin := func(method, path, body string) response {
		t.Helper()
		req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return e.send(req)
	}
	mustStatus(t, admin("POST", "/_emu/faults", `[{"op":"listJobs","kind":"status","status":503,"times":1}]`), http.StatusNoContent)
	mustStatus(t, admin("POST", "/_emu/faults", `[{"op":"listJobs","kind":"bogus"}]`), http.StatusBadRequest)
	if r := admin("GET", "/_emu/faults", ""); !strings.Contains(string(r.body), `"status": 503`) {
		t.Errorf("faults: %s", r.body)
	}
	mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs?key="+fcMaster), http.StatusServiceUnavailable)
	mustStatus(t, admin("POST", "/_emu/faults", `[{"op":"*","kind":"status","status":500,"times":-1}]`), http.StatusNoContent)
	mustStatus(t, admin("DELETE", "/_emu/faults", ""), http.StatusNoContent)
	mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs?key="+fcMaster), http.StatusOK)

	ids := make([]string, 2)
	for i := range ids {
		ids[i] = e.createDownload(fcAccess, fcName, fcMaster).get("id").str()
	}
	mustStatus(t, admin("POST", "/_emu/jobs/"+ids[0]+"/complete", ""), http.StatusNoContent)
	mustStatus(t, admin("POST", "/_emu/jobs/"+ids[0]+"/complete", ""), http.StatusConflict)
	mustStatus(t, admin("POST", "/_emu/jobs/"+ids[1]+"/abort", `{"message":"Disk full."}`), http.StatusNoContent)
	mustStatus(t, admin("POST", "/_emu/jobs/nope/abort", ""), http.StatusNotFound)
	mustStatus(t, admin("POST", "/_emu/jobs/"+ids[1]+"/abort", `not json`), http.StatusBadRequest)
	jobs := parseJSON(t, admin("GET", "/_emu/jobs", "").body)
	if jobs.get(0, "status").str() != "Completed" || jobs.get(1, "status").str() != "Aborted" || jobs.get(1, "errorMessage").str() != "Disk full." {
		t.Errorf("jobs: %v", jobs.shape())
	}

	reqs := parseJSON(t, admin("GET", "/_emu/requests", "").body)
	if len(reqs.items) != 4 || reqs.get(0, "keyClass").str() != "master" || reqs.get(0, "query").str() != "key=REDACTED" {
		t.Errorf("requests: %d %v", len(reqs.items), reqs.get(0).shape())
	}
	mustStatus(t, admin("DELETE", "/_emu/requests", ""), http.StatusNoContent)
	if r := admin("GET", "/_emu/requests", ""); strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("requests after reset: %s", r.body)
	}
	mustStatus(t, admin("PUT", "/_emu/jobs", ""), http.StatusMethodNotAllowed)
}

func TestContentLengthHeaderIsExact(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{
		createPath(fcAccess, fcName, fcMaster, "o=xml"),
		"/REST/v1/data?key=" + fcMaster,
		"/REST/v1/Dataflows/ListJobs?key=" + fcMaster,
		createPath(fcAccess, "Nope", fcMaster),
	} {
		r := e.get(p)
		if r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
			t.Errorf("%s: Content-Length %s for %d bytes", p, r.header.Get("Content-Length"), len(r.body))
		}
	}
}
