// Package backoff is the one retry wait of sdsops: capped exponential
// backoff with full jitter, so that many callers that failed together do
// not retry together.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a backoff: the wait's ceiling starts at Base and doubles per
// attempt up to Max.
type Policy struct {
	Base time.Duration
	Max  time.Duration
}

// Wait returns the wait after attempt number attempt (counted from 1):
// uniformly random in [0, min(Max, Base·2^(attempt-1))].
func (p Policy) Wait(attempt int) time.Duration {
	ceiling := p.Base
	for i := 1; i < attempt && ceiling < p.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.Max)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// Sleep waits d, or less when ctx is done first, whose error it returns.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
