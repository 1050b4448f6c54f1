// Package uptest starts `make up` for tests that drive the local stack as
// a user does, with only the environment it prints.
package uptest

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/localrun"
)

// Up is a running `make up`.
type Up struct {
	// Env holds the variables it printed (export K=V lines).
	Env map[string]string
	// Printed is what it printed up to its ready line.
	Printed        string
	Stdout, Stderr *Buffer

	cmd     *exec.Cmd
	exited  chan error
	stopped bool
	t       testing.TB
}

// Start runs `make -s up UP_ARGS=upArgs` in root, waits for its ready
// line (3 minutes at most) and stops it at the test's end.
func Start(t testing.TB, root, upArgs string) *Up {
	t.Helper()
	u := &Up{Env: map[string]string{}, Stdout: &Buffer{}, Stderr: &Buffer{}, exited: make(chan error, 1), t: t}
	u.cmd = exec.Command("make", "-s", "up", "UP_ARGS="+upArgs)
	u.cmd.Dir = root
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the whole group
	u.cmd.Stdout, u.cmd.Stderr = u.Stdout, u.Stderr
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.exited <- u.cmd.Wait() }()
	t.Cleanup(u.Stop)
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(u.Stdout.String(), localrun.ReadyLine+"\n") {
		select {
		case err := <-u.exited:
			t.Fatalf("make up exited before it was ready (%v):\n%s\n%s", err, u.Stdout.String(), u.Stderr.String())
		case <-deadline:
			t.Fatalf("make up not ready after 3 minutes:\n%s\n%s", u.Stdout.String(), u.Stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	u.Printed = u.Stdout.String()
	for _, line := range strings.Split(u.Printed, "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			u.Env[k] = v
		}
	}
	return u
}

// Stop sends Ctrl-C and waits for make up to end (30 s, then it is
// killed and the test fails). It is safe to call more than once.
func (u *Up) Stop() {
	if u.stopped {
		return
	}
	u.stopped = true
	syscall.Kill(-u.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-u.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-u.cmd.Process.Pid, syscall.SIGKILL)
		<-u.exited
		u.t.Errorf("make up did not stop within 30 s of Ctrl-C")
	}
}

// Buffer is a bytes.Buffer that a process writes while the test reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
