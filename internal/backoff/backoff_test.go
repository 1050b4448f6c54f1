package backoff

import (
	"context"
	"testing"
	"time"
)

func TestWaitStaysUnderItsCeiling(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: time.Second}
	ceilings := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000, 1000}
	for i, c := range ceilings {
		attempt, ceiling := i+1, c*time.Millisecond
		var longest time.Duration
		for range 500 {
			d := p.Wait(attempt)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: wait %v outside [0, %v]", attempt, d, ceiling)
			}
			longest = max(longest, d)
		}
		// Full jitter: over 500 draws the waits reach well into the range.
		if longest < ceiling/2 {
			t.Errorf("attempt %d: longest of 500 waits %v, want some above %v", attempt, longest, ceiling/2)
		}
	}
	if d := (Policy{}).Wait(3); d != 0 {
		t.Errorf("zero policy waits %v", d)
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep on a cancelled context: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep did not return when its context was done")
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("Sleep 1ms: %v", err)
	}
}
