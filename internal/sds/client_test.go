package sds

import (
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestValidateNames(t *testing.T) {
	tests := []struct {
		accessID, name string
		wantField      string // "" = valid
	}{
		{"20181f26d9e94c81acdf9496133d4f23", "FourthCoffeeSample", ""},
		{"12ccc26d9e9412345f94922212345", "A~`!$^_={}", ""},
		{"12ccc26d9e9412345f94922212345", "Stores-2019", ""},
		{"12ccc26d9e9412345f94922212345", "-", ""},
		{"", "FourthCoffeeSample", "accessId"},
		{strings.Repeat("a", 65), "n", "accessId"},
		{"abc/def", "n", "accessId"},
		{"abc", "", "dataSourceName"},
		{"abc", strings.Repeat("n", 51), "dataSourceName"},
		{"abc", "a/b", "dataSourceName"},
		{"abc", "..", "dataSourceName"},
		{"abc", "a?b", "dataSourceName"},
		{"abc", "a#b", "dataSourceName"},
		{"abc", "a%2Fb", "dataSourceName"},
		{"abc", "a b", "dataSourceName"},
		{"abc", "a\x00b", "dataSourceName"},
		{"abc", "a\nb", "dataSourceName"},
		{"abc", "caf\xe9", "dataSourceName"},
		{"abc", "café", "dataSourceName"},
	}
	for _, tt := range tests {
		err := DataSource{AccessID: tt.accessID, Name: tt.name}.Validate()
		if tt.wantField == "" {
			if err != nil {
				t.Errorf("Validate(%q, %q) = %v, want nil", tt.accessID, tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tt.wantField) {
			t.Errorf("Validate(%q, %q) = %v, want ErrInvalidInput naming %s", tt.accessID, tt.name, err, tt.wantField)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	const key = "SecretMasterKey123"
	tests := []struct{ base, key string }{
		{"ftp://spatial.virtualearth.net", key},
		{"https://", key},
		{"https://user:pw@spatial.virtualearth.net", key},
		{"https://spatial.virtualearth.net/other", key},
		{"https://spatial.virtualearth.net?x=1", key},
		{"https://spatial.virtualearth.net", ""},
		{"https://spatial.virtualearth.net", "has space" + key},
	}
	for _, tt := range tests {
		_, err := New(tt.base, tt.key)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("New(%q) = %v, want ErrInvalidInput", tt.base, err)
		}
		if err != nil && tt.key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
	if _, err := New("https://spatial.virtualearth.net/REST/v1/", key); err != nil {
		t.Errorf("base with /REST/v1: %v", err)
	}
}

func TestLinksOnlyToConfiguredHost(t *testing.T) {
	tests := []struct {
		base, link string
		ok         bool
	}{
		{"https://spatial.virtualearth.net", "https://spatial.virtualearth.net/REST/v1/dataflows/DataSourceDownload/X", true},
		{"https://spatial.virtualearth.net", "https://SPATIAL.virtualearth.net:443/REST/v1/x", true},
		{"https://spatial.virtualearth.net", "http://spatial.virtualearth.net/REST/v1/x", false}, // downgrade
		{"http://spatial.virtualearth.net", "https://spatial.virtualearth.net/REST/v1/x", true},  // the service writes https links
		{"https://spatial.virtualearth.net", "https://evil.example/REST/v1/x", false},
		{"https://spatial.virtualearth.net", "https://spatial.virtualearth.net.evil.example/REST/v1/x", false},
		{"https://spatial.virtualearth.net", "https://spatial.virtualearth.net:8443/REST/v1/x", false},
		{"https://spatial.virtualearth.net", "https://x@spatial.virtualearth.net/REST/v1/x", false},
		{"https://spatial.virtualearth.net", "https://spatial.virtualearth.net/other/x", false},
		{"https://spatial.virtualearth.net", "/REST/v1/x", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/REST/v1/x", true},
		{"http://127.0.0.1:8080", "http://127.0.0.2:8080/REST/v1/x", false},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8081/REST/v1/x", false},
		{"http://127.0.0.1:8080", "http://localhost:8080/REST/v1/x", false},
	}
	for _, tt := range tests {
		c, err := New(tt.base, "k")
		if err != nil {
			t.Fatal(err)
		}
		u, err := c.link("op", tt.link)
		if ok := err == nil; ok != tt.ok {
			t.Errorf("base %s link %s: err = %v, want ok=%v", tt.base, tt.link, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("link refusal is not ErrInvalidInput: %v", err)
		}
		if err == nil && u.Query().Get("key") != "" {
			t.Errorf("link kept a key parameter")
		}
	}
}

func TestLinkDropsForeignKeyParameter(t *testing.T) {
	c, _ := New("https://spatial.virtualearth.net", "k")
	u, err := c.link("op", "https://spatial.virtualearth.net/REST/v1/x?KEY=other&o=xml&jobId=1")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(u.RawQuery)
	if len(q) != 1 || q.Get("jobId") != "1" {
		t.Errorf("query = %q, want only jobId", u.RawQuery)
	}
}

// The jittered backoff itself is internal/backoff's; the client's part is
// that a Retry-After longer than the backoff wins, and that its waits stay
// within MaxDelay otherwise.
func TestBackoffHonoursRetryAfter(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for attempt := 1; attempt <= 8; attempt++ {
		for range 200 {
			if d := p.backoff(attempt, 0); d < 0 || d > p.MaxDelay {
				t.Fatalf("attempt %d: backoff %v outside [0, %v]", attempt, d, p.MaxDelay)
			}
		}
	}
	if d := p.backoff(1, 3*time.Second); d != 3*time.Second {
		t.Errorf("Retry-After 3s gave %v", d)
	}
}

func TestClientStringHidesKey(t *testing.T) {
	const key = "TopSecretMasterKey"
	c, err := New("https://spatial.virtualearth.net", key)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), c.GoString(), c.LogValue().String()} {
		if strings.Contains(s, key) {
			t.Errorf("%q shows the key", s)
		}
	}
}

func TestStripLink(t *testing.T) {
	tests := map[string]string{
		"https://spatial.virtualearth.net/REST/v1/dataflows/DataSourceDownload/X":      "https://spatial.virtualearth.net/REST/v1/dataflows/DataSourceDownload/X",
		"https://u:p@spatial.virtualearth.net/REST/v1/x?key=SECRET&o=xml&jobId=1#frag": "https://spatial.virtualearth.net/REST/v1/x?jobId=1",
		"https://spatial.virtualearth.net/REST/v1/x?KEY=SECRET&Output=json":            "https://spatial.virtualearth.net/REST/v1/x",
		"/relative/path": "",
		"::not a url":    "",
	}
	for in, want := range tests {
		if got := StripLink(in); got != want {
			t.Errorf("StripLink(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactStream: the key is removed from a stream wherever reads split
// it, in each encoding redact knows, and nothing else changes.
func TestRedactStream(t *testing.T) {
	c, err := New("https://spatial.virtualearth.net", "Ab+c/d")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"none", "no key here\n", "no key here\n"},
		{"empty", "", ""},
		{"raw", "key=Ab+c/d;", "key=REDACTED;"},
		{"query escaped", "GET /x?key=Ab%2Bc%2Fd&o=xml", "GET /x?key=REDACTED&o=xml"},
		{"path escaped", "/Ab+c%2Fd/", "/REDACTED/"},
		{"at both ends", "Ab+c/dmiddleAb+c/d", "REDACTEDmiddleREDACTED"},
		{"prefix only at the end", "ends with Ab+c", "ends with Ab+c"},
		{"long", strings.Repeat("x", 70000) + "Ab+c/d" + strings.Repeat("y", 70000), strings.Repeat("x", 70000) + "REDACTED" + strings.Repeat("y", 70000)},
	} {
		for _, rd := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"one byte", iotest.OneByteReader}, {"half", iotest.HalfReader}} {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				got, err := io.ReadAll(c.redactStream(rd.wrap(strings.NewReader(tc.in))))
				if err != nil || string(got) != tc.want {
					t.Errorf("got %.200q (%v), want %.200q", got, err, tc.want)
				}
			})
		}
	}
	// A source that breaks part way: its error is passed on, and what was
	// held back, which could be the start of a key, is dropped.
	in := strings.Repeat("y", 20) + "Ab+c"
	got, err := io.ReadAll(c.redactStream(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader(in)))))
	if !errors.Is(err, iotest.ErrTimeout) || strings.Contains(string(got), "A") {
		t.Errorf("a failing source: %q %v, want a part of the y's and its error", got, err)
	}
}
