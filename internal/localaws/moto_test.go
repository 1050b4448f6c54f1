//go:build unix

package localaws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

func TestMotoStartStop(t *testing.T) {
	start := time.Now()
	m, err := StartMoto(t.Context(), MotoOptions{SkipWaits: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("moto ready in %s at %s (pid %d)", time.Since(start).Round(time.Millisecond), m.Endpoint(), m.cmd.Process.Pid)
	if want := "http://127.0.0.1:" + strconv.Itoa(m.port); m.Endpoint() != want {
		t.Errorf("Endpoint() = %q, want %q", m.Endpoint(), want)
	}

	// GET /moto-api/config does not report the Step Functions switch; the Step Functions
	// tests show that executions run.
	resp, err := http.Get(m.Endpoint() + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /moto-api/: %s", resp.Status)
	}
	pid, port := m.cmd.Process.Pid, m.port
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	assertGone(t, pid, port)
}

func TestMotoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	m, err := StartMoto(ctx, MotoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("moto still running 10 s after its context ended")
	}
	assertGone(t, m.cmd.Process.Pid, m.port)
}

// assertGone checks that no process of the group is left and the port is free again.
func assertGone(t *testing.T, pid, port int) {
	t.Helper()
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists (kill 0: %v)", pid, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		ln.Close()
		return
	}
	// Another process on this machine may have been given the port since; fail only if
	// the old server still answers there.
	client := &http.Client{Timeout: time.Second}
	if resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/moto-api/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("port %d still served after Stop", port)
			return
		}
	}
	t.Logf("port %d is in use again, by another process", port)
}

func TestMotoUnavailable(t *testing.T) {
	realPython, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not in PATH: %v", err)
	}
	// An interpreter that cannot import moto: the real one without site-packages.
	noMoto := filepath.Join(t.TempDir(), "python-without-site")
	script := "#!/bin/sh\nexec '" + realPython + "' -S \"$@\"\n"
	if err := os.WriteFile(noMoto, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	// An interpreter whose moto is older than the launcher's patches know.
	oldMoto := t.TempDir()
	if err := os.MkdirAll(filepath.Join(oldMoto, "moto"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"__init__.py": "__version__ = \"5.1.18\"\n", "server.py": "def main(argv): raise SystemExit(0)\n"} {
		if err := os.WriteFile(filepath.Join(oldMoto, "moto", name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withOldMoto := filepath.Join(t.TempDir(), "python-old-moto")
	script = "#!/bin/sh\nPYTHONPATH='" + oldMoto + "' exec '" + realPython + "' -S \"$@\"\n"
	if err := os.WriteFile(withOldMoto, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		python string
		path   string // PATH, when set
		want   string
		hint   string
	}{
		{name: "bad python path", python: "/nonexistent/python3", want: "not found", hint: InstallHint},
		{name: "no python in PATH", path: t.TempDir(), want: "not found", hint: InstallHint},
		{name: "python without moto", python: noMoto, want: "moto is not installed", hint: InstallHint},
		{name: "moto too old", python: withOldMoto, want: "moto 5.1.18 is not supported", hint: "pip install -r requirements-dev.txt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SDSOPS_PYTHON", "")
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			m, err := StartMoto(t.Context(), MotoOptions{Python: tc.python})
			if err == nil {
				m.Stop()
				t.Fatal("StartMoto succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrMotoUnavailable) {
				t.Errorf("error does not wrap ErrMotoUnavailable")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.hint) || strings.Contains(msg, "\n") {
				t.Errorf("want a one-line error with %q and the install hint", tc.want)
			}
		})
	}
}

func TestMotoWaitScale(t *testing.T) {
	m, err := StartMoto(t.Context(), MotoOptions{WaitScale: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	cfg, err := NewAWSConfig(t.Context(), m.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	client := sfn.NewFromConfig(cfg)
	def := `{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":50,"Next":"Done"},"Done":{"Type":"Pass","Result":{"done":true},"End":true}}}`
	smARN := createStateMachine(t, client, "wait", def)
	runExecution(t, client, smARN, "", "{}") // loads moto's Step Functions code
	start := time.Now()
	d := runExecution(t, client, smARN, "", "{}")
	elapsed := time.Since(start)
	// 50 s × 0.02 = 1 s: at least that (scaled, not skipped), and far below 50 s even on a
	// busy machine.
	if d.Status != "SUCCEEDED" || elapsed < 950*time.Millisecond || elapsed > 25*time.Second {
		t.Errorf("Wait 50 s at scale 0.02: %s after %s, want SUCCEEDED after about 1 s", d.Status, elapsed)
	}
	t.Logf("Wait 50 s at scale 0.02 took %s", elapsed)
	if !strings.Contains(m.Output(), "applied sfn-wait-scale(0.02)") {
		t.Errorf("launcher did not report the wait patch; output:\n%s", m.Output())
	}
}
