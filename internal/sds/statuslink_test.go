package sds

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStatusLinkFromLocation: every call that reads a job takes a missing
// self link from the Location header the same way, keeps only a Location
// the key may be sent to, and fails only where a new job needs one.
func TestStatusLinkFromLocation(t *testing.T) {
	const key = "secret-key-123"
	noSelf := `{"statusCode":201,"resourceSets":[{"resources":[{"id":"j1","status":"Pending"}]}]}`
	calls := []struct {
		name string
		need bool // a new job: no usable link is an error
		call func(*Client, string) (*Job, error)
	}{
		{"create download", true, func(c *Client, _ string) (*Job, error) {
			return c.CreateDownloadJob(context.Background(), DataSource{AccessID: "a", Name: "n"}, "")
		}},
		{"load", true, func(c *Client, _ string) (*Job, error) {
			data := `<DataSet/>`
			return c.Load(context.Background(), LoadRequest{Name: "n", Operation: LoadComplete, Body: strings.NewReader(data), Size: int64(len(data))})
		}},
		{"download status", false, func(c *Client, base string) (*Job, error) {
			return c.DownloadJobStatus(context.Background(), base+"/REST/v1/dataflows/x")
		}},
		{"job status", false, func(c *Client, base string) (*Job, error) {
			return c.JobStatus(context.Background(), base+"/REST/v1/dataflows/x")
		}},
	}
	for _, tc := range []struct {
		name     string
		location string // %s: the server's origin
		want     string // status URL kept; "" none
	}{
		{"relative", "/REST/v1/dataflows/DataSourceDownload/a/n/j1", "%s/REST/v1/dataflows/DataSourceDownload/a/n/j1"},
		{"absolute, key and format dropped", "%s/REST/v1/dataflows/j1?key=" + key + "&o=json", "%s/REST/v1/dataflows/j1"},
		{"another host", "https://elsewhere.example/REST/v1/dataflows/j1", ""},
		{"not under /REST/v1", "/other/j1", ""},
		{"key in the path", "/REST/v1/dataflows/" + key + "/j1", ""},
		{"none", "", ""},
	} {
		for _, call := range calls {
			t.Run(tc.name+"/"+call.name, func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					if tc.location != "" {
						w.Header().Set("Location", strings.ReplaceAll(tc.location, "%s", "http://"+r.Host))
					}
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusCreated)
					io.WriteString(w, noSelf)
				}))
				defer srv.Close()
				c, err := New(srv.URL, key, WithRetry(RetryPolicy{MaxAttempts: 1}))
				if err != nil {
					t.Fatal(err)
				}
				job, err := call.call(c, srv.URL)
				want := strings.ReplaceAll(tc.want, "%s", srv.URL)
				switch {
				case want == "" && call.need:
					if err == nil {
						t.Fatalf("job %+v without a usable status link was accepted", job)
					}
					if strings.Contains(err.Error(), key) {
						t.Errorf("error shows the key: %v", err)
					}
					var e *Error
					if !errors.As(err, &e) || !(errors.Is(err, ErrDecode) || errors.Is(err, ErrInvalidInput)) {
						t.Errorf("err %v: want ErrDecode or ErrInvalidInput", err)
					}
				case err != nil:
					t.Fatalf("err %v", err)
				case job.StatusURL() != want:
					t.Errorf("status URL %q, want %q", job.StatusURL(), want)
				}
			})
		}
	}
}
