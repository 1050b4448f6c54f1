package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunServesAndStops(t *testing.T) {
	const key = "sdsemu-master-key-fourthcoffee"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-download-job-duration", "0",
			"-faults", "../../testdata/faults.json"}, outW, stderr)
	}()

	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "SDSEMU_URL=http://127.0.0.1:")
	if !ok || base == "" {
		t.Fatalf("first line %q", line)
	}
	url := "http://127.0.0.1:" + base + "/REST/v1/Dataflows/DataSourceDownload/20181f26d9e94c81acdf9496133d4f23/FourthCoffeeSample?key=" + key
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "key=REDACTED") || !strings.Contains(logs, "status=201") || strings.Contains(logs, key) {
		t.Errorf("request log: %s", logs)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	for name, args := range map[string][]string{
		"missing fixture": {"-fixture", "nope.json"},
		"invalid fixture": {"-fixture", "../../testdata/invalid-duplicate-name.json"},
		"missing faults":  {"-faults", "nope.json"},
		"bad address":     {"-addr", "127.0.0.1:notaport"},
		"extra argument":  {"serve"},
		"unknown flag":    {"-port", "80"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), args, &stdout, &stderr); err == nil {
				t.Errorf("run %v succeeded", args)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q", stdout.String())
			}
		})
	}
}
