package localaws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func startEndpoint(t *testing.T) *LambdaEndpoint {
	t.Helper()
	ep := NewLambdaEndpoint(LambdaOptions{})
	if err := ep.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

type invokeResponse struct {
	status        int
	functionError string
	requestID     string
	body          []byte
}

// invokeHTTP calls the Invoke API the way an SDK (and moto) does.
func invokeHTTP(t *testing.T, ep *LambdaEndpoint, function, payload string) invokeResponse {
	t.Helper()
	u := ep.URL() + "/2015-03-31/functions/" + url.PathEscape(function) + "/invocations"
	resp, err := http.Post(u, "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return invokeResponse{
		status:        resp.StatusCode,
		functionError: resp.Header.Get("X-Amz-Function-Error"),
		requestID:     resp.Header.Get("X-Amzn-Requestid"),
		body:          body,
	}
}

type echoResult struct {
	Echo      json.RawMessage `json:"echo"`
	Function  string          `json:"function"`
	Memory    int             `json:"memory"`
	RequestID string          `json:"requestId"`
	ARN       string          `json:"arn"`
	PID       int             `json:"pid"`
	Region    string          `json:"region"`
	Handler   string          `json:"handler"`
	Endpoint  string          `json:"endpoint"`
	Extra     string          `json:"extra"`
	Deadline  int64           `json:"deadline"`
}

func decodeEcho(t *testing.T, r invokeResponse) echoResult {
	t.Helper()
	if r.status != http.StatusOK || r.functionError != "" {
		t.Fatalf("invoke: status %d, function error %q, body %s", r.status, r.functionError, r.body)
	}
	var e echoResult
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return e
}

type errorDoc struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func decodeError(t *testing.T, r invokeResponse) errorDoc {
	t.Helper()
	if r.status != http.StatusOK || r.functionError != "Unhandled" {
		t.Fatalf("invoke: status %d, function error %q (want 200, Unhandled), body %s", r.status, r.functionError, r.body)
	}
	var e errorDoc
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return e
}

func TestRuntimeEcho(t *testing.T) {
	ep := startEndpoint(t)
	err := ep.RegisterBinary("echo", BinaryFunction{Path: echoBin, MemoryMB: 256, Env: map[string]string{"ECHO_EXTRA": "extra-value"}})
	if err != nil {
		t.Fatal(err)
	}

	before := time.Now()
	r := invokeHTTP(t, ep, "echo", `{"action":"echo","log":"hello-log"}`)
	e := decodeEcho(t, r)
	if string(e.Echo) != `{"action":"echo","log":"hello-log"}` {
		t.Errorf("echo = %s", e.Echo)
	}
	if e.Function != "echo" || e.Memory != 256 || e.Region != DefaultRegion || e.Handler != "bootstrap" ||
		e.Extra != "extra-value" || e.Endpoint != ep.URL() || e.ARN != ep.FunctionARN("echo") {
		t.Errorf("function context = %+v", e)
	}
	if e.RequestID == "" || e.RequestID != r.requestID {
		t.Errorf("request id in function %q, in response header %q", e.RequestID, r.requestID)
	}
	// The deadline counts from delivery to the process, which a busy machine delays.
	if d := time.UnixMilli(e.Deadline).Sub(before); d < DefaultTimeout-time.Second || d > DefaultTimeout+15*time.Second {
		t.Errorf("deadline %s after invoke, want about %s", d, DefaultTimeout)
	}

	// Empty request body means {}; ARNs and qualified names address the same function.
	for _, name := range []string{"echo", "echo:$LATEST", ep.FunctionARN("echo"), "123456789012:function:echo"} {
		if got := decodeEcho(t, invokeHTTP(t, ep, name, "")); string(got.Echo) != "{}" || got.PID != e.PID {
			t.Errorf("invoke %s with empty body: echo %s pid %d (warm pid %d)", name, got.Echo, got.PID, e.PID)
		}
	}

	if r := invokeHTTP(t, ep, "nosuchfn", "{}"); r.status != http.StatusNotFound {
		t.Errorf("unknown function: status %d, want 404", r.status)
	}
	if r := invokeHTTP(t, ep, "echo", "{not json"); r.status != http.StatusBadRequest {
		t.Errorf("invalid JSON: status %d, want 400", r.status)
	}

	var sawStdout, sawStderr, sawInit bool
	for _, l := range ep.Logs() {
		switch {
		case l.Function == "echo" && l.Stream == "stdout" && l.Text == "stdout: hello-log":
			sawStdout = true
		case l.Function == "echo" && l.Stream == "stderr" && l.Text == "stderr: hello-log":
			sawStderr = true
		case l.Stream == "stderr" && strings.HasSuffix(l.Text, "echofn init"):
			sawInit = true
		}
	}
	if !sawStdout || !sawStderr || !sawInit {
		t.Errorf("logs: stdout %v stderr %v init %v: %+v", sawStdout, sawStderr, sawInit, ep.Logs())
	}
	invs := ep.Invocations()
	if len(invs) != 5 || string(invs[0].Payload) != `{"action":"echo","log":"hello-log"}` || invs[1].Instance != 1 {
		t.Errorf("%d invocations recorded, want 5; first payload %s", len(invs), invs[0].Payload)
	}
	cold := ep.ColdStarts()
	if len(cold) != 1 || cold[0].Ready <= 0 {
		t.Fatalf("cold starts: %+v", cold)
	}
	t.Logf("echo bootstrap cold start (process start to first /next): %s", cold[0].Ready)
}

func TestRuntimeErrors(t *testing.T) {
	ep := startEndpoint(t)
	if err := ep.RegisterBinary("echo", BinaryFunction{Path: echoBin}); err != nil {
		t.Fatal(err)
	}
	pid := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID

	e := decodeError(t, invokeHTTP(t, ep, "echo", `{"action":"error","errorType":"SdsRetryable","message":"try later"}`))
	if e.ErrorType != "SdsRetryable" || e.ErrorMessage != "try later" {
		t.Errorf("handler error = %+v", e)
	}
	if got := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID; got != pid {
		t.Errorf("a handler error replaced the process (pid %d, was %d)", got, pid)
	}

	e = decodeError(t, invokeHTTP(t, ep, "echo", `{"action":"crash","code":7}`))
	if e.ErrorType != "Runtime.ExitError" || !strings.Contains(e.ErrorMessage, "exit status 7") {
		t.Errorf("crash = %+v", e)
	}
	next := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID
	if next == pid {
		t.Errorf("after a crash the same pid %d answered", pid)
	}

	// aws-lambda-go reports a panic, then exits: the next invocation gets a new process.
	e = decodeError(t, invokeHTTP(t, ep, "echo", `{"action":"panic","message":"boom"}`))
	if e.ErrorMessage != "boom" {
		t.Errorf("panic = %+v", e)
	}
	for range 3 {
		decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`))
	}
	var types []string
	for _, inv := range ep.Invocations() {
		types = append(types, inv.ErrorType)
	}
	want := []string{"", "SdsRetryable", "", "Runtime.ExitError", "", "string", "", "", ""}
	if !slices.Equal(types, want) {
		t.Errorf("recorded error types %q, want %q", types, want)
	}
}

func TestRuntimeInitFailure(t *testing.T) {
	ep := startEndpoint(t)
	falseBin, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false executable")
	}
	if err := ep.RegisterBinary("broken", BinaryFunction{Path: falseBin}); err != nil {
		t.Fatal(err)
	}
	e := decodeError(t, invokeHTTP(t, ep, "broken", `{}`))
	if e.ErrorType != "Runtime.ExitError" || !strings.Contains(e.ErrorMessage, "exit status 1") {
		t.Errorf("init failure = %+v", e)
	}
	if err := ep.RegisterBinary("missing", BinaryFunction{Path: "/nonexistent/bootstrap"}); err == nil {
		t.Error("registering a missing executable succeeded")
	}
}

func TestRuntimeTimeout(t *testing.T) {
	ep := startEndpoint(t)
	if err := ep.RegisterBinary("echo", BinaryFunction{Path: echoBin, Timeout: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	pid := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID
	start := time.Now()
	e := decodeError(t, invokeHTTP(t, ep, "echo", `{"action":"sleep","ms":20000}`))
	if e.ErrorType != "Sandbox.Timedout" || !strings.Contains(e.ErrorMessage, "Task timed out after 0.50 seconds") {
		t.Errorf("timeout = %+v", e)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout answered after %s", d)
	}
	if got := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID; got == pid {
		t.Error("the timed-out process was not replaced")
	}
}

// SetTimeout gives later invocations a new timeout, and tells it the
// function, without replacing the warm process; an invocation in flight
// keeps the timeout it started with.
func TestSetTimeout(t *testing.T) {
	ep := startEndpoint(t)
	if err := ep.RegisterBinary("echo", BinaryFunction{Path: echoBin, Timeout: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan invokeResponse, 1)
	go func() { inFlight <- invokeHTTP(t, ep, "echo", `{"action":"sleep","ms":3000,"log":"sleeping"}`) }()
	for started, until := false, time.Now().Add(10*time.Second); !started; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(until) {
			t.Fatal("the sleeping invocation never started")
		}
		for _, l := range ep.Logs() {
			started = started || l.Text == "stdout: sleeping"
		}
	}
	if err := ep.SetTimeout("echo", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if e := decodeError(t, <-inFlight); e.ErrorType != "Sandbox.Timedout" || !strings.Contains(e.ErrorMessage, "0.50 seconds") {
		t.Errorf("the invocation in flight: %+v, want its own 0.5 s timeout", e)
	}
	start := time.Now()
	warm := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`))
	if d := time.UnixMilli(warm.Deadline).Sub(start); d < 9*time.Second || d > 11*time.Second {
		t.Errorf("the function's deadline is %s away, want 10 s", d)
	}
	if got := decodeEcho(t, invokeHTTP(t, ep, "echo", `{"action":"sleep","ms":1000}`)).PID; got != warm.PID {
		t.Errorf("a 1 s invocation ran on process %d, not the warm %d", got, warm.PID)
	}
	if err := ep.SetTimeout("nosuch", time.Second); err == nil {
		t.Error("SetTimeout of an unknown function succeeded")
	}
}

func TestRuntimeConcurrency(t *testing.T) {
	ep := startEndpoint(t)
	const maxInstances, calls = 3, 9
	if err := ep.RegisterBinary("echo", BinaryFunction{Path: echoBin, MaxInstances: maxInstances}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]invokeResponse, calls)
	for i := range calls {
		wg.Go(func() { results[i] = invokeHTTP(t, ep, "echo", `{"action":"sleep","ms":300}`) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	pids := map[int]bool{}
	for _, r := range results {
		pids[decodeEcho(t, r).PID] = true
	}
	if len(pids) < 2 || len(pids) > maxInstances {
		t.Errorf("%d processes served %d parallel invocations, want 2..%d", len(pids), calls, maxInstances)
	}
	if n := len(ep.ColdStarts()); n > maxInstances {
		t.Errorf("%d processes started, cap %d", n, maxInstances)
	}
	if n := maxOverlap(ep.Invocations()); n < 2 || n > maxInstances {
		t.Errorf("at most %d invocations ran at the same time, want 2..%d", n, maxInstances)
	}
	t.Logf("%d invocations of 300 ms on %d processes: %s", calls, len(pids), elapsed)
}

// Kill ends a function's processes as a crash would: the invocation in flight
// fails with Runtime.ExitError and the next one runs on a new process.
func TestKill(t *testing.T) {
	ep := startEndpoint(t)
	if err := ep.RegisterBinary("echo", BinaryFunction{Path: echoBin}); err != nil {
		t.Fatal(err)
	}
	pid := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID
	inFlight := make(chan invokeResponse, 1)
	go func() { inFlight <- invokeHTTP(t, ep, "echo", `{"action":"sleep","ms":5000}`) }()
	// The warm process takes the invocation up as soon as it starts.
	for deadline := time.Now().Add(5 * time.Second); starts(ep) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n, err := ep.Kill("echo"); n != 1 || err != nil {
		t.Fatalf("Kill: %d processes, %v; want 1", n, err)
	}
	if e := decodeError(t, <-inFlight); e.ErrorType != "Runtime.ExitError" {
		t.Errorf("invocation in flight: %+v, want Runtime.ExitError", e)
	}
	if next := decodeEcho(t, invokeHTTP(t, ep, "echo", `{}`)).PID; next == pid {
		t.Errorf("after Kill the same pid %d answered", pid)
	}
	if _, err := ep.Kill("nosuch"); err == nil {
		t.Error("Kill of an unknown function: no error")
	}
	if r := invokeType(t, ep, "echo", "Event"); r != http.StatusBadRequest {
		t.Errorf("Event invocation: status %d, want 400 (only RequestResponse is served)", r)
	}
}

// starts counts the invocations begun so far (their START lines).
func starts(ep *LambdaEndpoint) int {
	n := 0
	for _, l := range ep.Logs() {
		if strings.HasPrefix(l.Text, "START RequestId") {
			n++
		}
	}
	return n
}

// invokeType sends an invocation of the given X-Amz-Invocation-Type and
// returns the status.
func invokeType(t *testing.T, ep *LambdaEndpoint, function, invocationType string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ep.URL()+"/2015-03-31/functions/"+function+"/invocations", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Invocation-Type", invocationType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type customError struct{}

func (*customError) Error() string { return "custom failure" }

func TestGoHandler(t *testing.T) {
	ep := startEndpoint(t)
	ctx := t.Context()
	reg := func(name string, h HandlerFunc, timeout time.Duration) {
		t.Helper()
		if err := ep.RegisterHandler(name, h, timeout); err != nil {
			t.Fatal(err)
		}
	}
	reg("upper", func(_ context.Context, p []byte) ([]byte, error) { return bytes.ToUpper(p), nil }, 0)
	reg("typed", func(context.Context, []byte) ([]byte, error) {
		return nil, &FunctionError{Type: "SdsNotFound", Message: "no such archive"}
	}, 0)
	reg("plain", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("plain failure") }, 0)
	reg("custom", func(context.Context, []byte) ([]byte, error) { return nil, &customError{} }, 0)
	reg("panics", func(context.Context, []byte) ([]byte, error) { panic("oops") }, 0)
	reg("slow", func(ctx context.Context, _ []byte) ([]byte, error) {
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // ignores its deadline for a while, like a stuck handler
		return []byte(`"late"`), nil
	}, 100*time.Millisecond)

	if r := decodeEcho(t, invokeHTTP(t, ep, "upper", `{"echo":"abc"}`)); string(r.Echo) != `"ABC"` {
		t.Errorf("upper: %s", r.Echo)
	}
	cases := map[string]errorDoc{
		"typed":  {"SdsNotFound", "no such archive"},
		"plain":  {"errorString", "plain failure"},
		"custom": {"customError", "custom failure"},
		"panics": {"Runtime.Panic", "oops"},
	}
	for name, want := range cases {
		if got := decodeError(t, invokeHTTP(t, ep, name, `{}`)); got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	res, err := ep.Invoke(ctx, "slow", nil)
	if err != nil || res.FunctionError != "Unhandled" || res.ErrorType != "Sandbox.Timedout" {
		t.Errorf("slow: %+v, %v", res, err)
	}
	if _, err := ep.Invoke(ctx, "nosuchfn", nil); !errors.Is(err, ErrFunctionNotFound) {
		t.Errorf("unknown function: %v", err)
	}
}

func TestFunctionName(t *testing.T) {
	for in, want := range map[string]string{
		"echo":                       "echo",
		"echo:prod":                  "echo",
		"123456789012:function:echo": "echo",
		"arn:aws:lambda:us-east-1:123456789012:function:echo":         "echo",
		"arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST": "echo",
	} {
		if got := functionName(in); got != want {
			t.Errorf("functionName(%q) = %q, want %q", in, got, want)
		}
	}
}

// maxOverlap is the largest number of recorded invocations running at one instant.
func maxOverlap(invs []Invocation) int {
	best := 0
	for _, a := range invs {
		n := 0
		for _, b := range invs {
			if !b.Start.After(a.Start) && b.Start.Add(b.Duration).After(a.Start) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}
