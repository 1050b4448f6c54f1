package localaws

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// instance is one runtime process of a binary function, with the Lambda Runtime API it
// talks to served on a loopback port of its own. It runs one invocation at a time.
type instance struct {
	pool    *binaryPool
	id      int
	cmd     *exec.Cmd
	srv     *http.Server
	started time.Time

	next     chan *invocation // unbuffered: handed over when the process asks for work
	exited   chan struct{}    // closed once the process has exited and its output is read
	exitErr  error
	shutdown chan struct{} // closed by stop: ends blocked long polls

	readyOnce sync.Once
	stopOnce  sync.Once

	mu      sync.Mutex
	current *invocation // delivered and not yet answered
	initErr *result
	killed  bool
}

const runtimePrefix = "/2018-06-01/runtime/"

func startInstance(p *binaryPool, id int) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runtime API listener: %w", err)
	}
	inst := &instance{
		pool:     p,
		id:       id,
		next:     make(chan *invocation),
		exited:   make(chan struct{}),
		shutdown: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"invocation/next", inst.handleNext)
	mux.HandleFunc("POST "+runtimePrefix+"invocation/{id}/response", inst.handleResponse)
	mux.HandleFunc("POST "+runtimePrefix+"invocation/{id}/error", inst.handleError)
	mux.HandleFunc("POST "+runtimePrefix+"init/error", inst.handleInitError)
	inst.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	stdout := &lineWriter{emit: inst.logger("stdout")}
	stderr := &lineWriter{emit: inst.logger("stderr")}
	cmd := exec.Command(p.cfg.Path)
	cmd.Dir = filepath.Dir(p.cfg.Path)
	cmd.Env = inst.environ(ln.Addr().String())
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second
	setProcessGroup(cmd)
	inst.cmd = cmd
	inst.started = time.Now()
	go func() { _ = inst.srv.Serve(ln) }()
	inst.mu.Lock() // kill may run from a runtime API handler as soon as the process is up
	err = cmd.Start()
	inst.mu.Unlock()
	if err != nil {
		_ = inst.srv.Close()
		return nil, fmt.Errorf("start %s: %w", p.cfg.Path, err)
	}
	go func() {
		err := cmd.Wait()
		stdout.Flush()
		stderr.Flush()
		inst.exitErr = err
		close(inst.exited)
	}()
	return inst, nil
}

func (inst *instance) logger(stream string) func(string) {
	return func(text string) {
		inst.pool.ep.rec.log(LogLine{
			Time: time.Now(), Function: inst.pool.name, Instance: inst.id, Stream: stream, Text: text,
		})
	}
}

// environ is the environment Lambda gives a provided-runtime function, with static test
// credentials, the endpoint as AWS_ENDPOINT_URL (once it listens), and the function's own
// variables on top.
func (inst *instance) environ(runtimeAddr string) []string {
	p := inst.pool
	dir := filepath.Dir(p.cfg.Path)
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := map[string]string{
		"PATH":                            path,
		"LANG":                            "en_US.UTF-8",
		"TZ":                              ":UTC",
		"AWS_LAMBDA_RUNTIME_API":          runtimeAddr,
		"AWS_LAMBDA_FUNCTION_NAME":        p.name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(p.cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + p.name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + newUUID()[:8],
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      p.ep.opts.Region,
		"AWS_DEFAULT_REGION":              p.ep.opts.Region,
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		"AWS_SESSION_TOKEN":               "test",
		"_HANDLER":                        filepath.Base(p.cfg.Path),
		"LAMBDA_TASK_ROOT":                dir,
		"LAMBDA_RUNTIME_DIR":              dir,
	}
	if u := p.ep.URL(); u != "" {
		env["AWS_ENDPOINT_URL"] = u
	}
	for k, v := range p.cfg.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func (inst *instance) alive() bool {
	inst.mu.Lock()
	killed := inst.killed
	inst.mu.Unlock()
	select {
	case <-inst.exited:
		return false
	default:
		return !killed
	}
}

// kill ends the process at once (timeouts, init errors); stop still has to be called.
func (inst *instance) kill() {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.killed = true
	_ = killGroup(inst.cmd)
}

// stop ends the process and its server.
func (inst *instance) stop() {
	inst.stopOnce.Do(func() {
		close(inst.shutdown)
		_ = stopProcess(inst.cmd, inst.exited, 0)
		_ = inst.srv.Close()
	})
}

// serve hands inv to the process and waits for its answer, its exit or inv's timeout.
// delivered tells whether the process took the invocation.
func (inst *instance) serve(inv *invocation, initTimeout time.Duration) (res result, delivered bool) {
	wait := time.NewTimer(initTimeout)
	defer wait.Stop()
	select {
	case inst.next <- inv:
	case <-inst.exited:
		inst.mu.Lock()
		initErr := inst.initErr
		inst.mu.Unlock()
		if initErr != nil {
			return *initErr, false
		}
		return inst.exitResult(inv.id), false
	case <-wait.C:
		inst.kill()
		msg := fmt.Sprintf("RequestId: %s Error: runtime did not ask for work within %s", inv.id, initTimeout)
		return result{errType: "Sandbox.Timedout", errMsg: msg, errBody: errorBody("Sandbox.Timedout", msg)}, false
	}
	deadline := time.NewTimer(inv.timeout)
	defer deadline.Stop()
	select {
	case r := <-inv.result:
		return r, true
	case <-inst.exited:
		select {
		case r := <-inv.result: // answered just before exiting
			return r, true
		default:
		}
		return inst.exitResult(inv.id), true
	case <-deadline.C:
		inst.kill()
		return timeoutResult(inv.id, inv.timeout), true
	}
}

// exitResult is what Lambda reports when the runtime process exits during an invocation.
func (inst *instance) exitResult(requestID string) result {
	reason := "Runtime exited without providing a reason"
	if inst.exitErr != nil {
		reason = "Runtime exited with error: " + inst.exitErr.Error()
	}
	msg := fmt.Sprintf("RequestId: %s Error: %s", requestID, reason)
	return result{errType: "Runtime.ExitError", errMsg: msg, errBody: errorBody("Runtime.ExitError", msg)}
}

func (inst *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	inst.readyOnce.Do(func() {
		inst.pool.ep.rec.coldStart(ColdStart{
			Function: inst.pool.name, Instance: inst.id, Start: inst.started, Ready: time.Since(inst.started),
		})
	})
	select {
	case inv := <-inst.next:
		deadline := time.Now().Add(inv.timeout)
		inst.mu.Lock()
		inst.current = inv
		inst.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", inv.arn)
		h.Set("Lambda-Runtime-Trace-Id", inv.traceID)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	case <-inst.shutdown:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	}
}

// finish detaches the invocation a response or error is posted for.
func (inst *instance) finish(w http.ResponseWriter, id string) *invocation {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inv := inst.current
	if inv == nil || inv.id != id {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID: "+id)
		return nil
	}
	inst.current = nil
	return inv
}

func (inst *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	inv := inst.finish(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	if len(body) > maxPayload {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxPayload)
		inv.result <- result{errType: "Function.ResponseSizeTooLarge", errMsg: msg, errBody: errorBody("Function.ResponseSizeTooLarge", msg)}
	} else {
		inv.result <- result{payload: body}
	}
	writeAccepted(w)
}

func (inst *instance) handleError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	inv := inst.finish(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	inv.result <- parseErrorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	writeAccepted(w)
}

// handleInitError records the runtime's init failure; the process is then ended and the
// waiting invocation fails with this error.
func (inst *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	res := parseErrorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	inst.mu.Lock()
	inst.initErr = &res
	inst.mu.Unlock()
	writeAccepted(w)
	go inst.kill()
}

// parseErrorBody turns a posted error document into a result, keeping a well-formed body
// (it may carry a stackTrace) as Lambda does.
func parseErrorBody(body []byte, fallbackType string) result {
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		doc.ErrorMessage = string(body)
	}
	if doc.ErrorType != "" {
		return result{errType: doc.ErrorType, errMsg: doc.ErrorMessage, errBody: body}
	}
	t := fallbackType
	if t == "" {
		t = "Unhandled"
	}
	return result{errType: t, errMsg: doc.ErrorMessage, errBody: errorBody(t, doc.ErrorMessage)}
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func writeRuntimeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(errType, msg))
}
