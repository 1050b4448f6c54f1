package localaws

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoBin is the testdata/echofn bootstrap, built once for all tests.
var echoBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "localaws-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	echoBin = filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", echoBin, "./testdata/echofn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build testdata/echofn:", err)
		return 1
	}
	defer stopSharedStack()
	return m.Run()
}

var shared struct {
	once  sync.Once
	stack *Stack
	err   error
}

// sharedStack is one moto + Lambda endpoint (waits skipped) for the tests that only need
// AWS APIs; starting moto and loading its Step Functions code takes seconds.
func sharedStack(t *testing.T) *Stack {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		shared.stack, shared.err = StartStack(context.Background(), StackOptions{Moto: MotoOptions{SkipWaits: true}})
		if shared.err == nil {
			t.Logf("shared stack started in %s", time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.err != nil {
		t.Fatalf("start stack: %v", shared.err)
	}
	return shared.stack
}

func stopSharedStack() {
	if shared.stack != nil {
		_ = shared.stack.Stop()
	}
}

var nameSeq atomic.Int64

// uniqueName makes resource names unique within the shared moto, also under -count=N.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}
