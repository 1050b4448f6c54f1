package sds

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A DELETE whose answer is lost is repeated; the repeat finding the data
// source gone means the first one worked.
func TestRepeatedDeleteFindingNothingSucceeds(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond) // accepted, but the answer comes too late
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	c, err := New(srv.URL, "k", WithTimeout(100*time.Millisecond), WithRetry(RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDataSource(context.Background(), DataSource{AccessID: "abc", Name: "x"}, false); err != nil {
		t.Fatalf("repeated delete: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d requests, want 2", calls.Load())
	}
	// A first answer of 404 is still an error.
	if err := c.DeleteDataSource(context.Background(), DataSource{AccessID: "abc", Name: "x"}, false); err == nil {
		t.Error("a plain 404 was taken for success")
	}
}

// Retries stop while the caller still has time before its deadline.
func TestRetriesRespectDeadline(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "k", WithRetry(RetryPolicy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxRetryAfter: 10 * time.Second}))
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ListJobs(ctx)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v: want a prompt Throttled error", err, time.Since(start))
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests, want 1: a 2 s wait does not fit before the deadline", calls.Load())
	}
}

// A 404 after a failure that certainly did nothing (429) is not success.
func TestDeleteNotFoundAfterRefusalIsAnError(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "k", WithRetry(RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
	if err := c.DeleteDataSource(context.Background(), DataSource{AccessID: "abc", Name: "x"}, false); err == nil {
		t.Fatal("a 404 after a 429 was taken for success")
	}
}
