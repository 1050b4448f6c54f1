package sds

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/backoff"
)

// RetryPolicy bounds the client's retries; the package doc describes the
// policy as a whole.
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

// deadlineMargin is the time a retry leaves before the context's deadline,
// on top of the wait and another attempt as long as the failed one, so
// that the caller can still report the error.
const deadlineMargin = time.Second

// withRetries calls try until it succeeds or fails for good: a failure that may
// reports it may not repeat, MaxAttempts reached, a Retry-After beyond
// MaxRetryAfter, a wait that does not fit before the deadline, or a done
// context. It returns try's last error. It is the client's only retry
// loop: whatever an attempt covers (the request, and for most calls the
// reading of the answer's body) is repeated as a whole.
func (c *Client) withRetries(ctx context.Context, op string, may func(error) bool, try func() error) error {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := try()
		if err == nil {
			return nil
		}
		var e *Error
		if attempt >= c.retry.MaxAttempts || ctx.Err() != nil || !errors.As(err, &e) || !may(err) {
			return err
		}
		if e.RetryAfter > c.retry.MaxRetryAfter {
			return err
		}
		wait := c.retry.backoff(attempt, e.RetryAfter)
		// Another attempt may take as long as this one did (a stall lasts
		// the whole idle timeout).
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+time.Since(start)+deadlineMargin {
			return err
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "sds retry",
			slog.String("op", op), slog.Int("attempt", attempt), slog.Int("status", e.StatusCode),
			slog.Duration("wait", wait), slog.String("error", e.Class.Error()))
		if backoff.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// backoff returns the wait before attempt number attempt+1 (attempt counts
// from 1): full jitter over [0, min(MaxDelay, BaseDelay*2^(attempt-1))],
// raised to retryAfter when the service asked for more.
func (p RetryPolicy) backoff(attempt int, retryAfter time.Duration) time.Duration {
	return max(backoff.Policy{Base: p.BaseDelay, Max: p.MaxDelay}.Wait(attempt), retryAfter)
}

// retryable decides whether a failed attempt of an ordinary request may be
// repeated. Requests that create something (a job) are repeated only when
// the service certainly did not act: a throttling answer, or a connection
// never made.
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

// outcomeUnknown reports a failure after which the service may still have
// acted on the request: no answer after it was sent, or a gateway error.
func outcomeUnknown(err error) bool {
	var e *Error
	if !errors.As(err, &e) || !errors.Is(e, ErrUnavailable) {
		return false
	}
	switch e.StatusCode {
	case 0:
		return !isDialError(e.Err)
	case 500, 502, 504:
		return true
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
