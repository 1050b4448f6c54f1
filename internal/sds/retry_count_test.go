package sds

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRequestsPerCall counts the requests one call makes for each failure
// pattern: never more than MaxAttempts, whatever fails (status, transport,
// body), and fewer when the failure may not be repeated or the wait does
// not fit before the deadline.
func TestRequestsPerCall(t *testing.T) {
	const attempts = 4
	policy := RetryPolicy{MaxAttempts: attempts, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: 2 * time.Second}
	jobJSON := `{"statusCode":201,"resourceSets":[{"resources":[{"id":"j1","status":"Pending","links":[{"role":"self","url":"%s/REST/v1/dataflows/DataSourceDownload/a/n/j1"}]}]}]}`
	listJSON := `{"statusCode":200,"resourceSets":[{"resources":[]}]}`

	// answer writes the answer to request number n (from 1).
	type answer func(w http.ResponseWriter, n int, base string)
	status := func(code int, retryAfter string) answer {
		return func(w http.ResponseWriter, _ int, _ string) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(code)
		}
	}
	cutBody := func(w http.ResponseWriter, _ int, _ string) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"statusCode":200,`) // the connection closes 982 bytes short
	}
	stall := func(w http.ResponseWriter, _ int, _ string) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"statusCode":200,`)
		http.NewResponseController(w).Flush()
		time.Sleep(1500 * time.Millisecond) // past the client's 1 s idle timeout
	}
	// Three 503s, then a 200 whose body breaks, over and over: each kind
	// of failure alone stays under the limit, together they must too.
	mixed := func(w http.ResponseWriter, n int, base string) {
		if n%4 == 0 {
			cutBody(w, n, base)
			return
		}
		status(http.StatusServiceUnavailable, "")(w, n, base)
	}
	okAfter := func(fails int, fail answer, body string) answer {
		return func(w http.ResponseWriter, n int, base string) {
			if n <= fails {
				fail(w, n, base)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, strings.ReplaceAll(body, "%s", base))
		}
	}
	list := func(ctx context.Context, c *Client) error { _, err := c.ListJobs(ctx); return err }
	create := func(ctx context.Context, c *Client) error {
		_, err := c.CreateDownloadJob(ctx, DataSource{AccessID: "a", Name: "n"}, "")
		return err
	}
	export := func(ctx context.Context, c *Client) error {
		exp, err := c.OpenExportURL(ctx, "http://"+c.base.Host+"/REST/v1/dataflows/x/file")
		if err == nil {
			exp.Body.Close()
		}
		return err
	}
	load := func(ctx context.Context, c *Client) error {
		data := `<?xml version="1.0" encoding="utf-8"?><DataSet/>`
		_, err := c.Load(ctx, LoadRequest{Name: "n", Operation: LoadComplete, Body: strings.NewReader(data), Size: int64(len(data))})
		return err
	}

	for _, tc := range []struct {
		name     string
		call     func(context.Context, *Client) error
		answer   answer // nil: every connection is refused
		deadline time.Duration
		want     int   // requests (or connection attempts)
		wantErr  error // nil: the call succeeds
	}{
		{name: "list: 503 always", call: list, answer: status(503, ""), want: attempts, wantErr: ErrUnavailable},
		{name: "list: 503 twice, then ok", call: list, answer: okAfter(2, status(503, ""), listJSON), want: 3},
		{name: "list: 429 with Retry-After 0 always", call: list, answer: status(429, "0"), want: attempts, wantErr: ErrThrottled},
		{name: "list: 429 with Retry-After 1, then ok", call: list, answer: okAfter(1, status(429, "1"), listJSON), want: 2},
		{name: "list: 429 with Retry-After beyond MaxRetryAfter", call: list, answer: status(429, "60"), want: 1, wantErr: ErrThrottled},
		{name: "list: 503 with Retry-After 2, deadline in 2.5 s", call: list, answer: status(503, "2"), deadline: 2500 * time.Millisecond, want: 1, wantErr: ErrThrottled},
		{name: "list: body cut short always", call: list, answer: cutBody, want: attempts, wantErr: ErrUnavailable},
		{name: "list: body stalls, deadline in 2.5 s", call: list, answer: stall, deadline: 2500 * time.Millisecond, want: 1, wantErr: ErrUnavailable},
		{name: "list: 503 ×3 then cut body, repeating", call: list, answer: mixed, want: attempts, wantErr: ErrUnavailable},
		{name: "list: connection refused", call: list, want: attempts, wantErr: ErrUnavailable},
		{name: "list: 400", call: list, answer: status(400, ""), want: 1, wantErr: ErrBadRequest},
		{name: "create download: 503 always", call: create, answer: status(503, ""), want: 1, wantErr: ErrUnavailable},
		{name: "create download: 429, then ok", call: create, answer: okAfter(1, status(429, "0"), jobJSON), want: 2},
		{name: "create download: body cut short", call: create, answer: cutBody, want: 1, wantErr: ErrUnavailable},
		{name: "create download: connection refused", call: create, want: attempts, wantErr: ErrUnavailable},
		{name: "export: 503 always", call: export, answer: status(503, ""), want: attempts, wantErr: ErrUnavailable},
		{name: "load: 503", call: load, answer: status(503, ""), want: 1, wantErr: ErrUnavailable},
		{name: "load: 429", call: load, answer: status(429, "0"), want: 1, wantErr: ErrThrottled},
		{name: "load: connection refused", call: load, want: attempts, wantErr: ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var requests atomic.Int32
			hc := &http.Client{}
			base := "http://sds.invalid"
			if tc.answer != nil {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					tc.answer(w, int(requests.Add(1)), "http://"+r.Host)
				}))
				defer srv.Close()
				base = srv.URL
			} else {
				hc.Transport = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					requests.Add(1)
					return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
				}}
			}
			c, err := New(base, "k", WithRetry(policy), WithHTTPClient(hc), WithTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			err = tc.call(ctx, c)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("err %v, want success", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if n := int(requests.Load()); n != tc.want {
				t.Errorf("%d requests, want %d (MaxAttempts %d)", n, tc.want, attempts)
			}
		})
	}
}
