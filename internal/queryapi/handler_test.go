package queryapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/query"
	"github.com/sdsops/sdsops/internal/query/querytest"
	"github.com/sdsops/sdsops/internal/shadow"
)

const (
	accountKey = "AccountKey-abc123def456ghi789"
	masterKey  = "MasterKey-zyx987"
	queryKey   = "QueryKey-only-for-geoms"
)

func loadTable(t testing.TB, export string) *query.Table {
	t.Helper()
	tb, err := query.DataSetLoader{}.Load(context.Background(), strings.NewReader(export))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// newServer serves the docs' two data sources: FourthCoffeeSample private
// without a query key, SampleDataSource private with one.
func newServer(t testing.TB) (*httptest.Server, *Sources) {
	t.Helper()
	srcs := &Sources{}
	srcs.Put(&Source{AccessID: querytest.AccessID, Name: querytest.Name, Published: loadTable(t, querytest.CoffeeShops())})
	qk := HashKey(queryKey)
	srcs.Put(&Source{AccessID: querytest.GeomAccessID, Name: querytest.GeomName, QueryKey: &qk, Published: loadTable(t, querytest.Geoms())})
	h := &Handler{Catalog: srcs, AccountKeys: [][32]byte{HashKey(accountKey)}, MasterKeys: [][32]byte{HashKey(masterKey)},
		Now: func() time.Time { return time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC) }}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srcs
}

type example struct {
	title, status, expect, url string
}

func docsExamples(t *testing.T) []example {
	f, err := os.Open("testdata/docs-examples.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []example
	title := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# "):
			title = line[2:]
		case line != "":
			f := strings.SplitN(line, " ", 3)
			out = append(out, example{title, f[0], f[1], f[2]})
		}
	}
	return out
}

// get sends a docs URL to srv, with spaces encoded as a browser would and
// the docs' placeholder key replaced.
func get(t *testing.T, srv *httptest.Server, docsURL, key string) (*http.Response, []byte) {
	t.Helper()
	u := strings.Replace(docsURL, "http://spatial.virtualearth.net", srv.URL, 1)
	u = strings.ReplaceAll(strings.Replace(u, "key=queryKey", "key="+key, 1), " ", "%20")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// The docs' example requests, with our host, answer as documented: the
// same entities in the same order, in the documented structure, with each
// property typed as the schema says.
func TestDocsExamples(t *testing.T) {
	srv, srcs := newServer(t)
	for _, ex := range docsExamples(t) {
		t.Run(ex.title, func(t *testing.T) {
			key := accountKey
			if strings.Contains(ex.url, querytest.GeomAccessID) {
				key = queryKey
			}
			resp, body := get(t, srv, ex.url, key)
			if strconv.Itoa(resp.StatusCode) != ex.status {
				t.Fatalf("status %d, want %s: %s", resp.StatusCode, ex.status, body)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no CORS header")
			}
			if resp.StatusCode != 200 {
				if !strings.Contains(string(body), ex.expect) || !strings.Contains(string(body), "<StatusCode>400</StatusCode>") && !strings.Contains(string(body), `"statusCode":400`) {
					t.Errorf("error answer does not say %q in the SDS envelope: %s", ex.expect, body)
				}
				return
			}
			src := mustSource(t, srcs, ex.url)
			isJSON := strings.Contains(strings.ToLower(ex.url), "format=json")
			path, _, _ := strings.Cut(ex.url, "?")
			byID := strings.Contains(path, "('")
			ct := resp.Header.Get("Content-Type")
			if wantCT := map[bool]string{true: "application/json", false: "application/atom+xml"}[isJSON]; !strings.HasPrefix(ct, wantCT) {
				t.Errorf("Content-Type %q, want %s", ct, wantCT)
			}
			var ids []string
			for _, e := range decodeAnswer(t, ct, body, isJSON, byID) {
				ids = append(ids, e.ID)
				if want := srv.URL + "/REST/v1/data/" + src.AccessID + "/" + src.Name + "/" + src.Published.EntityType + "('"; !strings.HasPrefix(e.URI, want) {
					t.Errorf("uri %s does not lead back here (%s…)", e.URI, want)
				}
				checkTypes(t, src.Published, e, isJSON)
			}
			if ex.expect != "*" && strings.Join(ids, ",") != ex.expect {
				t.Errorf("entities %v, docs show %s", ids, ex.expect)
			}
			if ex.expect == "*" && len(ids) == 0 {
				t.Errorf("no entities")
			}
		})
	}
}

func mustSource(t *testing.T, srcs *Sources, u string) *Source {
	id := querytest.AccessID
	name := querytest.Name
	if strings.Contains(u, querytest.GeomAccessID) {
		id, name = querytest.GeomAccessID, querytest.GeomName
	}
	src, err := srcs.Source(context.Background(), id, name)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// decodeAnswer reads an answer as a client does, and checks the parts
// of the documented structure that are not entities.
func decodeAnswer(t *testing.T, ctype string, body []byte, isJSON, byID bool) []shadow.Entity {
	t.Helper()
	ents, err := shadow.Decode(ctype, body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	switch {
	case isJSON && !strings.HasPrefix(string(body), `{"d":{"__copyright":`):
		t.Errorf("JSON does not start with d.__copyright: %.100s", body)
	case isJSON && byID && strings.Contains(string(body), `"results":`):
		t.Error("a query by ID has d.results; d should be the entity")
	case isJSON && !byID && !strings.Contains(string(body), `"results":[`):
		t.Error("no d.results")
	case !isJSON && byID && !strings.Contains(string(body), "\n<entry xmlns:m="):
		t.Errorf("a query by ID is not a bare <entry>: %.200s", body)
	case !isJSON && !byID && !strings.Contains(string(body), "\n<feed xmlns:d="):
		t.Errorf("not an Atom feed: %.200s", body)
	case !isJSON && !strings.Contains(string(body), `<rights type="text">`+DefaultCopyright+`</rights>`):
		t.Error("no <rights>")
	}
	return ents
}

var (
	jsonDate = regexp.MustCompile(`^/Date\(-?\d+\)/$`)
	atomDate = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$`)
)

// checkTypes holds each property to its type in the schema: Atom's m:type
// and text, JSON's value kinds.
func checkTypes(t *testing.T, tb *query.Table, e shadow.Entity, isJSON bool) {
	t.Helper()
	for _, p := range e.Props {
		var typ dataset.Type
		switch p.Name {
		case "__Distance":
			typ = dataset.Double
		case "__IntersectedGeom":
			typ = dataset.Geography
		default:
			c := tb.Column(p.Name)
			if c < 0 || tb.Columns[c].Name != p.Name {
				t.Errorf("property %q is not spelled as in the schema", p.Name)
				continue
			}
			typ = tb.Columns[c].Type
		}
		if isJSON {
			if p.Null {
				continue
			}
			ok := false
			switch v := p.JSON.(type) {
			case json.Number:
				_, err := v.Int64()
				ok = typ == dataset.Double || typ == dataset.Long && err == nil
			case bool:
				ok = typ == dataset.Boolean
			case string:
				ok = typ == dataset.String || typ == dataset.Geography || typ == dataset.DateTime && jsonDate.MatchString(v)
			}
			if !ok {
				t.Errorf("%s: JSON value %#v is not an %s", p.Name, p.JSON, typ.EDM())
			}
			continue
		}
		if p.Space != "http://schemas.microsoft.com/ado/2007/08/dataservices" {
			t.Errorf("property %s outside the d: namespace", p.Name)
		}
		wantAttr := typ.EDM()
		if typ == dataset.String {
			wantAttr = ""
		}
		if p.Type != wantAttr {
			t.Errorf("%s: m:type %q, want %q", p.Name, p.Type, wantAttr)
		}
		if p.Null {
			continue
		}
		var err error
		switch typ {
		case dataset.Double:
			_, err = strconv.ParseFloat(p.Text, 64)
		case dataset.Long:
			_, err = strconv.ParseInt(p.Text, 10, 64)
		case dataset.Boolean:
			if p.Text != "0" && p.Text != "1" {
				err = strconv.ErrSyntax
			}
		case dataset.DateTime:
			if !atomDate.MatchString(p.Text) {
				err = strconv.ErrSyntax
			}
		}
		if err != nil {
			t.Errorf("%s: Atom text %q is not an %s", p.Name, p.Text, typ.EDM())
		}
	}
}

// countingCatalog counts the loads a request causes, and knows the query
// keys without loading, as queryarchive.Catalog does.
type countingCatalog struct {
	*Sources
	keys  map[string]*[32]byte
	loads int
}

func (c *countingCatalog) Source(ctx context.Context, accessID, name string) (*Source, error) {
	c.loads++
	return c.Sources.Source(ctx, accessID, name)
}

func (c *countingCatalog) QueryKey(accessID, name string) *[32]byte {
	return c.keys[sourceKey(accessID, name)]
}

// A request without the right key is refused before its data source is
// loaded: an anonymous client cannot make the function load archives.
func TestWrongKeyLoadsNothing(t *testing.T) {
	srcs := &Sources{}
	srcs.Put(&Source{AccessID: querytest.AccessID, Name: querytest.Name, Published: loadTable(t, querytest.CoffeeShops())})
	qk := HashKey(queryKey)
	srcs.Put(&Source{AccessID: querytest.GeomAccessID, Name: querytest.GeomName, QueryKey: &qk, Published: loadTable(t, querytest.Geoms())})
	cat := &countingCatalog{Sources: srcs, keys: map[string]*[32]byte{sourceKey(querytest.GeomAccessID, querytest.GeomName): &qk}}
	srv := httptest.NewServer(&Handler{Catalog: cat, AccountKeys: [][32]byte{HashKey(accountKey)}, MasterKeys: [][32]byte{HashKey(masterKey)}})
	t.Cleanup(srv.Close)
	coffee := "/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/" + querytest.EntityType + "?spatialFilter=nearby(47.6,-122.3,100)&$format=json"
	geoms := "/REST/v1/data/" + querytest.GeomAccessID + "/" + querytest.GeomName + "/" + querytest.GeomEntityType + "?spatialFilter=nearby(47.6,-122.3,100)&$format=json"
	for _, tc := range []struct {
		name, url string
		status    int
		loads     int
	}{
		{"no key", coffee, http.StatusUnauthorized, 0},
		{"wrong key", coffee + "&key=nope", http.StatusUnauthorized, 0},
		{"another data source's query key", coffee + "&key=" + queryKey, http.StatusUnauthorized, 0},
		{"the account's key", coffee + "&key=" + accountKey, http.StatusOK, 1},
		{"the data source's query key", geoms + "&key=" + queryKey, http.StatusOK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat.loads = 0
			res, err := http.Get(srv.URL + tc.url)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status || cat.loads != tc.loads {
				t.Errorf("status %d after %d loads, want %d after %d", res.StatusCode, cat.loads, tc.status, tc.loads)
			}
		})
	}
}
