package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sdsops/sdsops/internal/query/querytest"
)

const coffeeURL = "http://spatial.virtualearth.net/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/" + querytest.EntityType
const geomURL = "http://spatial.virtualearth.net/REST/v1/data/" + querytest.GeomAccessID + "/" + querytest.GeomName + "/" + querytest.GeomEntityType

func TestKeys(t *testing.T) {
	srv, srcs := newServer(t)
	pub := *mustSource(t, srcs, coffeeURL)
	pub.Name, pub.Public = "PublicCopy", true
	qk := HashKey(queryKey)
	pub.QueryKey = &qk // public: the query key does not narrow who may query
	srcs.Put(&pub)
	pubURL := strings.Replace(coffeeURL, querytest.Name, "PublicCopy", 1)
	for _, tc := range []struct {
		name, url, key string
		status         int
	}{
		{"private without query key: account key", coffeeURL, accountKey, 200},
		{"private without query key: master key", coffeeURL, masterKey, 200},
		{"private without query key: other key", coffeeURL, "someone-else", 401},
		{"private without query key: key in another case", coffeeURL, strings.ToUpper(accountKey), 401},
		{"private without query key: no key", coffeeURL, "", 401},
		{"private with query key: query key", geomURL, queryKey, 200},
		{"private with query key: master key", geomURL, masterKey, 200},
		{"private with query key: account key", geomURL, accountKey, 401},
		{"public: account key", pubURL, accountKey, 200},
		{"public: query key is not an account key", pubURL, queryKey, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.url+"?$filter=entityId%20in%20('x')&$format=json&key=queryKey", tc.key)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 401 {
				var env struct {
					AuthenticationResultCode string
					StatusCode               int
					ErrorDetails             []string
				}
				if err := json.Unmarshal(body, &env); err != nil || env.StatusCode != 401 || env.AuthenticationResultCode == "ValidCredentials" || len(env.ErrorDetails) == 0 {
					t.Errorf("not SDS's 401: %s", body)
				}
				if tc.key != "" && strings.Contains(string(body), tc.key) {
					t.Error("the answer repeats the key")
				}
			}
		})
	}
}

// Keys reach neither the log nor an error answer, even on a server fault.
func TestKeysNotLogged(t *testing.T) {
	var logs bytes.Buffer
	h := &Handler{Catalog: failing{}, AccountKeys: [][32]byte{HashKey(accountKey)}, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, body := get(t, srv, coffeeURL+"?$filter=Open%20eq%201&key=queryKey", accountKey)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d, want 503 with Retry-After: %s", resp.StatusCode, body)
	}
	if logs.Len() == 0 {
		t.Error("the fault was not logged")
	}
	if strings.Contains(logs.String()+string(body), accountKey) {
		t.Errorf("key leaked: %s %s", logs.String(), body)
	}
}

type failing struct{}

func (failing) Source(context.Context, string, string) (*Source, error) {
	return nil, errFault
}

var errFault = &faultError{}

type faultError struct{}

func (*faultError) Error() string { return "S3 unavailable" }

func TestBadRequests(t *testing.T) {
	srv, _ := newServer(t)
	for _, tc := range []struct {
		name, url string
		status    int
		says      string
	}{
		{"unknown data source", strings.Replace(coffeeURL, querytest.Name, "Nope", 1) + "?$filter=Open%20eq%201&key=queryKey", 404, "no data source"},
		{"unknown entity type", coffeeURL + "Nope?$filter=Open%20eq%201&key=queryKey", 404, "no entity type"},
		{"unknown entity ID", coffeeURL + "('nope')?key=queryKey", 404, "no entity"},
		{"not a Query API path", "http://spatial.virtualearth.net/REST/v1/other?key=queryKey", 404, "Query API path"},
		{"no staged version", coffeeURL + "?$filter=Open%20eq%201&isStaging=1&key=queryKey", 404, "staged"},
		{"64 KB query string", coffeeURL + "?$filter=" + strings.Repeat("a", 64<<10) + "&key=queryKey", 400, "longer than"},
		{"bad callback", coffeeURL + "?$filter=Open%20eq%201&jsonp=alert(document.cookie)&key=queryKey", 400, "jsonp must be"},
		{"bad escape", coffeeURL + "?$filter=%zz&key=queryKey", 400, "URL-encoded"},
		{"$top=100000", coffeeURL + "?$filter=Open%20eq%201&$top=100000&key=queryKey", 400, "at most 250"},
		{"NaN", coffeeURL + "?spatialFilter=nearby(NaN,1,5)&key=queryKey", 400, "not a number"},
		{"unbalanced", coffeeURL + "?$filter=((Open%20eq%201)&key=queryKey", 400, "not closed"},
		{"10,000 nested not", coffeeURL + "?$filter=" + strings.Repeat("not%20", 10000) + "Open%20eq%201&key=queryKey", 400, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.url, accountKey)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.says) || !strings.Contains(string(body), "<StatusCode>") && !strings.Contains(string(body), `"statusCode":`) {
				t.Errorf("status %d, want %d saying %q in SDS's envelope: %.300s", resp.StatusCode, tc.status, tc.says, body)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/REST/v1/data/a/b/c?key=k", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestJSONPAndHead(t *testing.T) {
	srv, _ := newServer(t)
	resp, body := get(t, srv, coffeeURL+"('-22067')?jsonp=Microsoft.Maps.NetworkCallbacks.cb1&jsonso=st%22ate&$select=Name&key=queryKey", accountKey)
	want := `/**/Microsoft.Maps.NetworkCallbacks.cb1({"d":{"__copyright":`
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) || !strings.HasSuffix(string(body), `"Name":"Fourth Coffee Store #22067"}},"st\"ate");`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
		t.Errorf("Content-Type %s", ct)
	}
	u := strings.Replace(coffeeURL, "http://spatial.virtualearth.net", srv.URL, 1) + "?$filter=Open%20eq%20700&key=" + accountKey
	head, err := http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	getResp, getBody := get(t, srv, coffeeURL+"?$filter=Open%20eq%20700&key=queryKey", accountKey)
	if head.StatusCode != 200 || head.Header.Get("Content-Type") != getResp.Header.Get("Content-Type") || head.ContentLength <= 0 || head.ContentLength != int64(len(getBody)) {
		t.Errorf("HEAD %d %q %d; GET %d bytes", head.StatusCode, head.Header.Get("Content-Type"), head.ContentLength, len(getBody))
	}
}

// The by-ID example's values, as the docs print them (JSON dates as
// OData's milliseconds since 1970, see the README's compatibility notes).
func TestByIDValues(t *testing.T) {
	srv, _ := newServer(t)
	_, body := get(t, srv, coffeeURL+"('-22067')?key=queryKey", accountKey)
	for _, want := range []string{
		`<d:EntityID>-22067</d:EntityID>`,
		`<d:Latitude m:type="Edm.Double">57.003766</d:Latitude>`,
		`<d:AddressLine>Løven</d:AddressLine>`,
		`<d:SeatingCapacity m:type="Edm.Int64" m:null="true" />`,
		`<d:Open m:type="Edm.Int64">700</d:Open>`,
		`<d:IsWiFiHotSpot m:type="Edm.Boolean">0</d:IsWiFiHotSpot>`,
		`<d:AcceptsCoffeeCards m:type="Edm.Boolean">1</d:AcceptsCoffeeCards>`,
		`<d:CreatedDate m:type="Edm.DateTime">2010-11-03T00:00:00</d:CreatedDate>`,
		`<d:LastUpdatedDate m:type="Edm.DateTime">2010-11-03T23:31:36</d:LastUpdatedDate>`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("Atom lacks %s", want)
		}
	}
	_, body = get(t, srv, coffeeURL+"('-22067')?$format=json&key=queryKey", accountKey)
	for _, want := range []string{`"SeatingCapacity":null`, `"Open":700`, `"IsWiFiHotSpot":false`, `"CreatedDate":"\/Date(1288742400000)\/"`, `"SecondaryCity":""`, `"Latitude":57.003766`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("JSON lacks %s: %s", want, body)
		}
	}
	_, body = get(t, srv, coffeeURL+"?spatialFilter=nearby(40.83274904439099,-74.3163299560546935,5)&$inlinecount=allpages&$top=1&$format=json&key=queryKey", accountKey)
	if !strings.Contains(string(body), `"__count":"7"`) {
		t.Errorf("no __count of 7: %s", body)
	}
	_, body = get(t, srv, coffeeURL+"?spatialFilter=nearby(40.83274904439099,-74.3163299560546935,5)&$inlinecount=allpages&$top=1&key=queryKey", accountKey)
	if !strings.Contains(string(body), `<m:count>7</m:count>`) {
		t.Errorf("no m:count of 7: %s", body)
	}
}

// A new version replaces the served one atomically: under a stream of
// requests, every answer is whole and from one version or the other.
func TestSwitchVersions(t *testing.T) {
	srv, srcs := newServer(t)
	old := mustSource(t, srcs, coffeeURL)
	changed := *old
	changed.Published = loadTable(t, strings.Replace(querytest.CoffeeShops(), "Fourth Coffee Store #22067<", "Renamed Store<", 1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				srcs.Put(&changed)
			} else {
				srcs.Put(old)
			}
		}
	}()
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		resp, body := get(t, srv, coffeeURL+"('-22067')?$select=Name&$format=json&key=queryKey", accountKey)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d failed during the switch: %d %s", i, resp.StatusCode, body)
		}
		var doc struct{ D struct{ Name string } }
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		seen[doc.D.Name] = true
	}
	close(stop)
	wg.Wait()
	for name := range seen {
		if name != "Fourth Coffee Store #22067" && name != "Renamed Store" {
			t.Errorf("answer from neither version: %q", name)
		}
	}
}
