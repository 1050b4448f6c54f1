package shadow

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/query"
	"github.com/sdsops/sdsops/internal/query/querytest"
	"github.com/sdsops/sdsops/internal/queryapi"
)

const key = "AccountKey-for-shadow-tests"

// endpoint serves the docs' data sources, the coffee shops' export
// changed by alter.
func endpoint(t *testing.T, alter func(string) string) *httptest.Server {
	t.Helper()
	srcs := &queryapi.Sources{}
	load := func(export string) *query.Table {
		tb, err := query.DataSetLoader{}.Load(context.Background(), strings.NewReader(export))
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	srcs.Put(&queryapi.Source{AccessID: querytest.AccessID, Name: querytest.Name, Published: load(alter(querytest.CoffeeShops()))})
	srcs.Put(&queryapi.Source{AccessID: querytest.GeomAccessID, Name: querytest.GeomName, Public: true, Published: load(querytest.Geoms())})
	srv := httptest.NewServer(&queryapi.Handler{Catalog: srcs, AccountKeys: [][32]byte{queryapi.HashKey(key)}})
	t.Cleanup(srv.Close)
	return srv
}

// docsRequests are the docs' example requests, as an application's log
// would hold them.
func docsRequests(t *testing.T) []string {
	f, err := os.Open("../queryapi/testdata/docs-examples.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := ReadRequests(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range lines {
		u := strings.SplitN(l, " ", 3)[2]
		out = append(out, strings.Replace(u, "key=queryKey", "key="+key, 1))
	}
	return out
}

func TestIdenticalEndpointsAgree(t *testing.T) {
	same := func(s string) string { return s }
	c := &Comparer{SDS: endpoint(t, same).URL, SDSOps: endpoint(t, same).URL}
	results, err := c.Compare(context.Background(), docsRequests(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if !r.Same() {
			t.Errorf("%s: %v %v", r.Request, r.Err, r.Differences)
		}
	}
}

// An endpoint serving a deliberately altered archive is caught: a renamed
// store (a value), a moved store (order, distance), a deleted store
// (entities), a changed Boolean.
func TestAlteredArchiveIsReported(t *testing.T) {
	alter := strings.NewReplacer(
		"Fourth Coffee Store #8080, East Hanover", "Fifth Coffee Store #8080, East Hanover",
		"<Latitude>40.820685</Latitude>", "<Latitude>40.860685</Latitude>",
		"<IsWiFiHotSpot>true</IsWiFiHotSpot><IsWheelchairAccessible>false", "<IsWiFiHotSpot>false</IsWiFiHotSpot><IsWheelchairAccessible>false",
	).Replace
	removed := func(s string) string {
		i := strings.Index(s, "<FourthCoffeeShops><EntityID>-7891<")
		j := i + strings.Index(s[i:], "</FourthCoffeeShops>") + len("</FourthCoffeeShops>")
		return alter(s[:i] + s[j:])
	}
	c := &Comparer{SDS: endpoint(t, func(s string) string { return s }).URL, SDSOps: endpoint(t, removed).URL}
	results, err := c.Compare(context.Background(), docsRequests(t))
	if err != nil {
		t.Fatal(err)
	}
	var report []string
	for _, r := range results {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Request, r.Err)
		}
		report = append(report, r.Differences...)
		if strings.Contains(r.Request, key) {
			t.Errorf("report shows the key: %s", r.Request)
		}
	}
	all := strings.Join(report, "\n")
	for _, want := range []string{
		`DisplayName: SDS "Fourth Coffee Store #8080, East Hanover, NJ, United States", sdsops "Fifth Coffee Store #8080`,
		"entities: SDS [-7884 -7891 -7920], sdsops [-7884 -7920 -8051]",
		"entity -8051: Latitude",
		"order: SDS [-715 -661 -736 -685 -700], sdsops [-661 -715 -736 -685 -700]",
		`entity -715: IsWiFiHotSpot: SDS "true", sdsops "false"`,
		"entities: SDS [-22067 -7891], sdsops [-22067]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("report lacks %q:\n%s", want, all)
		}
	}
	for _, r := range results {
		if strings.Contains(r.Request, "SampleDataSource") && !r.Same() {
			t.Errorf("unchanged data source reported: %s %v", r.Request, r.Differences)
		}
	}
}

// Requests to SDS are spaced by the interval, and a throttled one is
// retried after its Retry-After.
func TestPacesAndRetriesSDS(t *testing.T) {
	ops := endpoint(t, func(s string) string { return s })
	var calls atomic.Int32
	sds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		resp, err := http.Get(ops.URL + r.URL.RequestURI())
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer sds.Close()
	var waits []time.Duration
	c := &Comparer{SDS: sds.URL, SDSOps: ops.URL, Interval: 200 * time.Millisecond, MaxRetries: 2,
		sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			time.Sleep(d / 100)
			return nil
		}}
	reqs := docsRequests(t)[:4]
	results, err := c.Compare(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Same() {
			t.Errorf("%s: %v %v", r.Request, r.Err, r.Differences)
		}
	}
	if calls.Load() != 5 {
		t.Errorf("%d calls to SDS, want 5 (4 requests, one retried)", calls.Load())
	}
	// A pause before each SDS request after the first, and the throttled
	// one's Retry-After.
	paced, retried := 0, false
	for _, w := range waits {
		switch {
		case w == time.Second:
			retried = true
		case w > 0 && w <= 200*time.Millisecond:
			paced++
		default:
			t.Errorf("waited %v", w)
		}
	}
	if !retried || paced < 3 {
		t.Errorf("waits %v: want the Retry-After of 1s and a pause of at most the interval before each later request", waits)
	}
}

func TestRedactHidesEveryFormOfTheKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/REST/v1/data/a/b/c?key=SECRET&$top=1", "/REST/v1/data/a/b/c?key=REDACTED&$top=1"},
		{"/x?$top=1&KEY=SECRET", "/x?$top=1&KEY=REDACTED"},
		{"/x?%6Bey=SECRET", "/x?%6Bey=REDACTED"},
		{"/x?key%20=SECRET&a=b", "/x?key%20=REDACTED&a=b"},
		{"/x?monkey=1&keys=2", "/x?monkey=1&keys=2"},
		{"/x", "/x"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
