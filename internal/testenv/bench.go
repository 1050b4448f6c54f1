package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// EmulatorProcess builds cmd/sdsemu and runs it in its own process until
// tb ends, jobs completing at once, so that a benchmark's heap figures are
// its own. It returns the emulator's base URL.
func EmulatorProcess(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "sdsemu")
	build := exec.Command("go", "build", "-o", bin, "github.com/sdsops/sdsops/internal/sdsemu/cmd/sdsemu")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-job-duration", "0", "-download-job-duration", "0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "SDSEMU_URL=")
	if !ok {
		tb.Fatalf("emulator said %q", line)
	}
	return url
}

// PeakHeap raises *peak to the largest heap (objects allocated, live or not
// yet swept) it sees every millisecond until stop is called.
func PeakHeap(peak *uint64) (stop func()) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			*peak = max(*peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
