package localaws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRegion and DefaultAccountID are the region and account moto and the local Lambda
// endpoint use unless told otherwise (123456789012 is moto's default account).
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
)

// MotoOptions configure StartMoto. The zero value starts moto on a free port in
// DefaultRegion with real-time waits.
type MotoOptions struct {
	// Python is the interpreter with moto installed. Empty: $SDSOPS_PYTHON, else python3
	// from PATH.
	Python string
	// LambdaPort becomes moto's MOTO_PORT: Step Functions sends Lambda invocations and
	// aws-sdk service integrations to http://localhost:LambdaPort. Zero: moto's own port.
	LambdaPort int
	// WaitScale multiplies the sleeps of Step Functions Wait states and Retry intervals
	// (SDSOPS_SFN_WAIT_SCALE of the launcher). Zero or less leaves the variable as
	// inherited from this process (unset: real time); SkipWaits makes the sleeps zero.
	WaitScale float64
	// SkipWaits turns Wait states and Retry intervals into no sleep at all (tests).
	SkipWaits bool
	// Region is reported by Moto.Region and used by helpers; default DefaultRegion.
	Region string
	// ReadyTimeout bounds the wait for moto to answer; default 30 s (it needs about 1 s on
	// an idle machine, over 15 s on a saturated one).
	ReadyTimeout time.Duration
	// Log, if set, receives moto's stdout and stderr as they come.
	Log io.Writer
}

// Moto is a running moto_server child process, started by StartMoto.
type Moto struct {
	endpoint string
	port     int
	region   string
	cmd      *exec.Cmd
	output   *tailBuffer
	done     chan struct{} // closed once the process has exited and been reaped
	waitErr  error

	mu        sync.Mutex
	stopAfter func() bool // unregisters the stop on ctx end
	stopOnce  sync.Once
	stopErr   error
}

// StartMoto starts moto_server (through the patching launcher) on a free 127.0.0.1 port,
// waits until it answers and switches Step Functions execution on. The process is stopped
// by Stop or when ctx ends.
func StartMoto(ctx context.Context, opts MotoOptions) (*Moto, error) {
	python, err := findPython(opts.Python)
	if err != nil {
		return nil, err
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	var lastErr error
	for range 3 { // the free port may be taken before moto binds it
		m, err := startMotoOnce(ctx, python, opts)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if errors.Is(err, ErrMotoUnavailable) || ctx.Err() != nil || !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, lastErr
}

var errAddrInUse = errors.New("address in use")

func startMotoOnce(ctx context.Context, python string, opts MotoOptions) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &Moto{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		port:     port,
		region:   opts.Region,
		output:   newTailBuffer(64 << 10),
		done:     make(chan struct{}),
	}
	lambdaPort := opts.LambdaPort
	if lambdaPort == 0 {
		lambdaPort = port
	}
	args := append(launcherArgs(), "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), "MOTO_PORT="+strconv.Itoa(lambdaPort), "PYTHONUNBUFFERED=1")
	switch {
	case opts.SkipWaits:
		cmd.Env = append(cmd.Env, "SDSOPS_SFN_WAIT_SCALE=0")
	case opts.WaitScale > 0:
		cmd.Env = append(cmd.Env, "SDSOPS_SFN_WAIT_SCALE="+strconv.FormatFloat(opts.WaitScale, 'g', -1, 64))
	}
	var out io.Writer = m.output
	if opts.Log != nil {
		out = io.MultiWriter(m.output, opts.Log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localaws: start moto with %s: %w", python, err)
	}
	m.cmd = cmd
	go func() {
		m.waitErr = cmd.Wait()
		close(m.done)
	}()

	if err := m.waitReady(ctx, opts.ReadyTimeout); err != nil {
		_ = m.Stop()
		return nil, err
	}
	if err := m.post(ctx, "/moto-api/config", `{"stepfunctions":{"execute_state_machine":true}}`); err != nil {
		_ = m.Stop()
		return nil, fmt.Errorf("localaws: enable Step Functions execution: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = m.Stop() })
	m.mu.Lock()
	m.stopAfter = stop
	m.mu.Unlock()
	return m, nil
}

// waitReady polls GET /moto-api/ until it answers 200, the process exits or time runs out.
func (m *Moto) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.endpoint+"/moto-api/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.done:
			return m.exitError()
		case <-ctx.Done():
			return fmt.Errorf("localaws: moto did not answer on %s within %s: %w (output: %s)",
				m.endpoint, timeout, ctx.Err(), m.output.lastLines(3))
		case <-tick.C:
		}
	}
}

// exitError explains why the moto process exited before it was ready.
func (m *Moto) exitError() error {
	var exit *exec.ExitError
	if errors.As(m.waitErr, &exit) && exit.ExitCode() == launcherExitMotoMissing {
		return fmt.Errorf("localaws: moto is not installed for %s (%s): %w",
			m.cmd.Path, InstallHint, ErrMotoUnavailable)
	}
	out := m.output.lastLines(3)
	if exit != nil && exit.ExitCode() == launcherExitMotoVersion {
		return fmt.Errorf("localaws: %s: %w", strings.TrimPrefix(strings.TrimSpace(out), "moto_launcher: "), ErrMotoUnavailable)
	}
	if bytes.Contains([]byte(out), []byte("Address already in use")) {
		return fmt.Errorf("localaws: moto exited: %s: %w", out, errAddrInUse)
	}
	return fmt.Errorf("localaws: moto exited before it was ready (%v): %s", m.waitErr, out)
}

func (m *Moto) post(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.endpoint+path, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Endpoint is moto's base URL, http://127.0.0.1:PORT.
func (m *Moto) Endpoint() string { return m.endpoint }

// Region is the region given in MotoOptions (default DefaultRegion).
func (m *Moto) Region() string { return m.region }

// Output returns the last 64 KiB of moto's stdout and stderr, for diagnostics.
func (m *Moto) Output() string { return m.output.String() }

// Done is closed when the moto process has exited.
func (m *Moto) Done() <-chan struct{} { return m.done }

// Stop ends moto and everything in its process group and waits until it has exited.
// It is safe to call more than once and from several goroutines.
func (m *Moto) Stop() error {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		stopAfter := m.stopAfter
		m.mu.Unlock()
		if stopAfter != nil {
			stopAfter()
		}
		m.stopErr = stopProcess(m.cmd, m.done, 3*time.Second)
	})
	return m.stopErr
}

// stopProcess asks cmd's process group to terminate, kills the group if the leader has not
// exited after grace, and waits until the leader has been reaped (done closed).
func stopProcess(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) error {
	select {
	case <-done:
		return nil
	default:
	}
	if grace > 0 {
		if err := terminateGroup(cmd); err != nil {
			return fmt.Errorf("localaws: stop pid %d: %w", cmd.Process.Pid, err)
		}
		select {
		case <-done:
			return nil
		case <-time.After(grace):
		}
	}
	if err := killGroup(cmd); err != nil {
		return fmt.Errorf("localaws: kill pid %d: %w", cmd.Process.Pid, err)
	}
	<-done
	return nil
}
