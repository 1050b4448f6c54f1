package localaws

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LambdaOptions configure a LambdaEndpoint. The zero value is usable.
type LambdaOptions struct {
	// Addr is the listen address for Start; default 127.0.0.1:0 (a free port).
	Addr string
	// Upstream is the base URL (moto) that every request other than a function invocation
	// is passed to; it may also be set later with SetUpstream.
	Upstream string
	// Region and AccountID build function ARNs and the functions' AWS_REGION; defaults
	// DefaultRegion and DefaultAccountID.
	Region    string
	AccountID string
	// Log, if set, receives every function log line as "name[instance] text" (platform
	// lines not tied to a process as "name text").
	Log io.Writer
	// MaxRecords bounds each of the invocation, log line and cold start histories;
	// default 10000 (the oldest are dropped).
	MaxRecords int
}

// ErrFunctionNotFound is returned by Invoke for a name that was not registered.
var ErrFunctionNotFound = errors.New("function not found")

// LambdaEndpoint is a local stand-in for the Lambda Invoke API. POST
// /2015-03-31/functions/{FunctionName}/invocations runs a registered function (a real
// bootstrap executable speaking the Lambda Runtime API, or an in-process Go handler); any
// other request is passed through to the upstream (moto). Give its port to moto as
// MOTO_PORT and Step Functions' Lambda tasks and aws-sdk integrations arrive here.
type LambdaEndpoint struct {
	opts     LambdaOptions
	rec      *recorder
	upstream atomic.Pointer[url.URL]
	proxy    *httputil.ReverseProxy
	fault    atomic.Pointer[UpstreamFault]
	bg       sync.WaitGroup // invocations in flight

	mu        sync.Mutex
	funcs     map[string]function
	closed    bool
	srv       *http.Server
	url       string
	stopAfter func() bool
	closeOnce sync.Once
}

// function is a registered function: a pool of runtime processes or a Go handler.
type function interface {
	// run executes inv to completion (or its timeout) and reports the outcome.
	run(inv *invocation) result
	// close stops the function's processes; later runs fail.
	close()
}

type invocation struct {
	id       string
	function string
	arn      string
	traceID  string
	payload  []byte
	result   chan result   // buffered 1; written once by whoever ends the invocation
	timeout  time.Duration // set when the invocation starts (binary functions)
}

// result is the outcome of one invocation: a payload, or an error type, message and body.
type result struct {
	payload  []byte
	errType  string
	errMsg   string
	errBody  []byte
	instance int
	started  time.Time // when a process (or handler) took the invocation up
}

// NewLambdaEndpoint returns an endpoint with no functions. Use it as an http.Handler, or
// call Start to serve it on its own port.
func NewLambdaEndpoint(opts LambdaOptions) *LambdaEndpoint {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 10000
	}
	e := &LambdaEndpoint{
		opts:  opts,
		rec:   &recorder{max: opts.MaxRecords, out: opts.Log},
		funcs: make(map[string]function),
	}
	e.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(e.upstream.Load())
			pr.Out.Host = pr.In.Host // keep the Host the client signed
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeAPIError(w, http.StatusBadGateway, "ServiceException", "upstream: "+err.Error())
		},
	}
	if opts.Upstream != "" {
		_ = e.SetUpstream(opts.Upstream) // an invalid URL answers 503 until set properly
	}
	return e
}

// SetUpstream sets the base URL that non-invocation requests are passed to.
func (e *LambdaEndpoint) SetUpstream(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("localaws: upstream %q is not an absolute URL", rawURL)
	}
	e.upstream.Store(u)
	return nil
}

// Start serves the endpoint on opts.Addr (default a free 127.0.0.1 port) until Close or
// until ctx ends.
func (e *LambdaEndpoint) Start(ctx context.Context) error {
	addr := e.opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("localaws: lambda endpoint: %w", err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second}
	e.mu.Lock()
	if e.closed || e.srv != nil {
		e.mu.Unlock()
		ln.Close()
		return errors.New("localaws: lambda endpoint already started or closed")
	}
	e.srv = srv
	e.url = "http://" + ln.Addr().String()
	e.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	stop := context.AfterFunc(ctx, func() { _ = e.Close() })
	e.mu.Lock()
	e.stopAfter = stop
	e.mu.Unlock()
	return nil
}

// URL is the endpoint's base URL once started (http://127.0.0.1:PORT), else "".
func (e *LambdaEndpoint) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// Port is the port the endpoint listens on once started, else 0.
func (e *LambdaEndpoint) Port() int {
	u, err := url.Parse(e.URL())
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// Close stops serving, stops every function process and waits for invocations in flight
// to end. It is safe to call more than once.
func (e *LambdaEndpoint) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		srv, funcs, stopAfter := e.srv, e.funcs, e.stopAfter
		e.funcs = map[string]function{}
		e.mu.Unlock()
		if stopAfter != nil {
			stopAfter()
		}
		if srv != nil {
			_ = srv.Close()
		}
		for _, f := range funcs {
			f.close()
		}
		e.bg.Wait()
	})
	return nil
}

var functionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (e *LambdaEndpoint) register(name string, f function) error {
	if !functionNameRE.MatchString(name) {
		f.close()
		return fmt.Errorf("localaws: invalid function name %q", name)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		f.close()
		return errors.New("localaws: lambda endpoint closed")
	}
	old := e.funcs[name]
	e.funcs[name] = f
	e.mu.Unlock()
	if old != nil {
		old.close() // re-registering replaces, e.g. after a rebuild
	}
	return nil
}

func (e *LambdaEndpoint) lookup(name string) function {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.funcs[name]
}

// track counts an invocation in flight, unless the endpoint is closing (Close waits for
// the count to drop to zero, so it must not grow then).
func (e *LambdaEndpoint) track() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.bg.Add(1)
	return true
}

// FunctionARN is the ARN under which name is invoked, as Step Functions definitions use it.
func (e *LambdaEndpoint) FunctionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", e.opts.Region, e.opts.AccountID, name)
}

// InvokeResult is the outcome of Invoke.
type InvokeResult struct {
	RequestID string
	// Payload is the function's result, or the error body
	// {"errorType":...,"errorMessage":...} when FunctionError is set.
	Payload []byte
	// FunctionError is "Unhandled" when the function failed (header X-Amz-Function-Error).
	FunctionError string
	ErrorType     string
	ErrorMessage  string
}

// Invoke runs function name (a name or an ARN) synchronously with payload (empty means
// {}). A function failure is reported in the result, not as error; error means the
// function is unknown or ctx ended first (the invocation itself then still runs to its end).
func (e *LambdaEndpoint) Invoke(ctx context.Context, name string, payload []byte) (InvokeResult, error) {
	name = functionName(name)
	f := e.lookup(name)
	if f == nil {
		return InvokeResult{}, fmt.Errorf("localaws: invoke %s: %w", name, ErrFunctionNotFound)
	}
	if !e.track() {
		return InvokeResult{}, fmt.Errorf("localaws: invoke %s: %w", name, ErrFunctionNotFound)
	}
	inv := e.newInvocation(name, payload)
	done := make(chan InvokeResult, 1)
	go func() {
		defer e.bg.Done()
		done <- e.execute(f, inv)
	}()
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return InvokeResult{RequestID: inv.id}, fmt.Errorf("localaws: invoke %s: %w", name, ctx.Err())
	}
}

// Kill ends every live process of binary function name at once (SIGKILL to its
// process group), as a crash would: an invocation in flight fails with
// Runtime.ExitError, and the next one starts a new process. It returns how many
// processes it ended.
func (e *LambdaEndpoint) Kill(name string) (int, error) {
	p, ok := e.lookup(functionName(name)).(*binaryPool)
	if !ok {
		return 0, fmt.Errorf("localaws: kill %s: no binary function of that name", name)
	}
	return p.kill(), nil
}

func (e *LambdaEndpoint) newInvocation(name string, payload []byte) *invocation {
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	return &invocation{
		id:       newUUID(),
		function: name,
		arn:      e.FunctionARN(name),
		traceID:  newTraceID(),
		payload:  payload,
		result:   make(chan result, 1),
	}
}

// execute runs inv on f and records it.
func (e *LambdaEndpoint) execute(f function, inv *invocation) InvokeResult {
	received := time.Now()
	e.platformLog(inv.function, 0, "START RequestId: "+inv.id+" Version: $LATEST")
	res := f.run(inv)
	start := res.started
	if start.IsZero() {
		start = received
	}
	d := time.Since(start)
	e.platformLog(inv.function, res.instance, "END RequestId: "+inv.id)
	e.platformLog(inv.function, res.instance, fmt.Sprintf("REPORT RequestId: %s Duration: %.2f ms", inv.id, float64(d.Microseconds())/1000))
	out := InvokeResult{RequestID: inv.id, Payload: res.payload}
	if res.errType != "" {
		out = InvokeResult{
			RequestID:     inv.id,
			Payload:       res.errBody,
			FunctionError: "Unhandled",
			ErrorType:     res.errType,
			ErrorMessage:  res.errMsg,
		}
	}
	e.rec.invocation(Invocation{
		Function:     inv.function,
		RequestID:    inv.id,
		Payload:      inv.payload,
		Response:     out.Payload,
		ErrorType:    out.ErrorType,
		ErrorMessage: out.ErrorMessage,
		Start:        start,
		Duration:     d,
		Wait:         start.Sub(received),
		Instance:     res.instance,
	})
	return out
}

func (e *LambdaEndpoint) platformLog(fn string, instance int, text string) {
	e.rec.log(LogLine{Time: time.Now(), Function: fn, Instance: instance, Stream: "platform", Text: text})
}

// Invocations returns the recorded invocations, oldest first.
func (e *LambdaEndpoint) Invocations() []Invocation { return e.rec.allInvocations() }

// Logs returns the recorded log lines of all functions, oldest first.
func (e *LambdaEndpoint) Logs() []LogLine { return e.rec.allLogs() }

// ColdStarts returns, per runtime process started, the time until it was ready.
func (e *LambdaEndpoint) ColdStarts() []ColdStart { return e.rec.allColdStarts() }

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(),
		hex.EncodeToString(b[:12]), hex.EncodeToString(b[12:]))
}
