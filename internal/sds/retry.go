package sds

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds the client's retries. Retries use capped exponential
// backoff with full jitter, and wait at least as long as a Retry-After
// header asks.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, including the first; 1 disables retries
	BaseDelay   time.Duration // first backoff cap; doubles per attempt
	MaxDelay    time.Duration // cap on one backoff
	// MaxRetryAfter is the longest Retry-After the client sleeps through
	// itself; a longer one is returned as ErrThrottled with RetryAfter set,
	// so an orchestrator can wait without holding a Lambda open.
	MaxRetryAfter time.Duration
}

// DefaultRetry suits a Lambda with a minute or two to spare.
var DefaultRetry = RetryPolicy{MaxAttempts: 4, BaseDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second, MaxRetryAfter: 30 * time.Second}

// backoff returns the wait before attempt number attempt+1 (attempt counts
// from 1): full jitter over [0, min(MaxDelay, BaseDelay*2^(attempt-1))],
// raised to retryAfter when the service asked for more.
func (p RetryPolicy) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := p.BaseDelay
	for i := 1; i < attempt && ceiling < p.MaxDelay; i++ {
		ceiling *= 2
	}
	if ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	var d time.Duration
	if ceiling > 0 {
		d = rand.N(ceiling + 1)
	}
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

// retryable decides whether a failed attempt may be repeated. Requests that
// create something (a job, a deletion) are repeated only when the service
// certainly did not act: a throttling answer, or a connection never made.
func retryable(err error, safe bool) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case errors.Is(e, ErrThrottled):
		return true
	case errors.Is(e, ErrUnavailable):
		return safe || isDialError(e.Err)
	}
	return false
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
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
