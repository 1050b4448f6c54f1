//go:build unix

package localaws

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestStackStop(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st, err := StartStack(ctx, StackOptions{Moto: MotoOptions{SkipWaits: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Lambda.RegisterBinary("echo", BinaryFunction{Path: echoBin}); err != nil {
		t.Fatal(err)
	}
	pid := decodeEcho(t, invokeHTTP(t, st.Lambda, "echo", `{}`)).PID
	resp, err := http.Get(st.Endpoint() + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pass-through to moto: %s", resp.Status)
	}

	// Ctrl-C: the context ends while a deferred Stop also runs.
	var wg sync.WaitGroup
	wg.Go(cancel)
	wg.Go(func() {
		if err := st.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	wg.Wait()
	if err := st.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	select {
	case <-st.Moto.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("moto still running")
	}
	assertGone(t, st.Moto.cmd.Process.Pid, st.Moto.port)
	assertGone(t, pid, st.Lambda.Port())
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("function process %d still exists", pid)
	}
}
