package queryapi

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
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
func newServer(t *testing.T) (*httptest.Server, *Sources) {
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
			var ents []gotEntity
			isJSON := strings.Contains(strings.ToLower(ex.url), "format=json")
			path, _, _ := strings.Cut(ex.url, "?")
			byID := strings.Contains(path, "('")
			if isJSON {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q", ct)
				}
				ents = decodeJSON(t, body, byID)
			} else {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/atom+xml") {
					t.Errorf("Content-Type %q", ct)
				}
				ents = decodeAtom(t, body, byID)
			}
			var ids []string
			for _, e := range ents {
				id := e.uri[strings.Index(e.uri, "('")+2 : len(e.uri)-2]
				ids = append(ids, id)
				if want := srv.URL + "/REST/v1/data/" + src.AccessID + "/" + src.Name + "/" + src.Published.EntityType + "('"; !strings.HasPrefix(e.uri, want) {
					t.Errorf("uri %s does not lead back here (%s…)", e.uri, want)
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

// gotEntity is an entity as a client decodes it: its uri, and each
// property's name, EDM type (Atom) or JSON value.
type gotEntity struct {
	uri   string
	names []string
	types []string // Atom m:type ("" for Edm.String)
	null  []bool
	texts []string // Atom text
	json  []any
}

func decodeAtom(t *testing.T, body []byte, byID bool) []gotEntity {
	type prop struct {
		XMLName xml.Name
		Type    string `xml:"type,attr"`
		Null    string `xml:"null,attr"`
		Text    string `xml:",chardata"`
	}
	type entry struct {
		ID    string `xml:"id"`
		Props struct {
			List []prop `xml:",any"`
		} `xml:"content>properties"`
	}
	var entries []entry
	if byID {
		var e entry
		if err := xml.Unmarshal(body, &e); err != nil {
			t.Fatalf("not an Atom entry: %v\n%s", err, body)
		}
		if !strings.Contains(string(body), `<entry xmlns:m=`) {
			t.Errorf("a query by ID is not a bare <entry>: %s", body)
		}
		entries = []entry{e}
	} else {
		var f struct {
			XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
			Rights  string   `xml:"rights"`
			Entries []entry  `xml:"entry"`
		}
		if err := xml.Unmarshal(body, &f); err != nil {
			t.Fatalf("not an Atom feed: %v\n%s", err, body)
		}
		if f.Rights == "" {
			t.Error("no <rights>")
		}
		entries = f.Entries
	}
	var out []gotEntity
	for _, e := range entries {
		g := gotEntity{uri: e.ID}
		for _, p := range e.Props.List {
			if p.XMLName.Space != "http://schemas.microsoft.com/ado/2007/08/dataservices" {
				t.Errorf("property %s outside the d: namespace", p.XMLName.Local)
			}
			g.names = append(g.names, p.XMLName.Local)
			g.types = append(g.types, p.Type)
			g.null = append(g.null, p.Null == "true")
			g.texts = append(g.texts, p.Text)
		}
		out = append(out, g)
	}
	return out
}

func decodeJSON(t *testing.T, body []byte, byID bool) []gotEntity {
	// Property order matters to clients that print them: read objects as
	// ordered key lists.
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var doc struct {
		D json.RawMessage `json:"d"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(doc.D, &d); err != nil {
		t.Fatal(err)
	}
	if _, ok := d["__copyright"]; !ok {
		t.Error("no __copyright")
	}
	var raws []json.RawMessage
	if byID {
		if _, ok := d["results"]; ok {
			t.Error("a query by ID has d.results; d should be the entity")
		}
		raws = []json.RawMessage{doc.D}
	} else if err := json.Unmarshal(d["results"], &raws); err != nil {
		t.Fatalf("no d.results: %s", body)
	}
	var out []gotEntity
	for _, raw := range raws {
		g := gotEntity{}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		_, _ = dec.Token() // {
		for dec.More() {
			k, _ := dec.Token()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			switch k {
			case "__metadata":
				g.uri, _ = v.(map[string]any)["uri"].(string)
			case "__copyright":
			default:
				g.names = append(g.names, k.(string))
				g.json = append(g.json, v)
			}
		}
		out = append(out, g)
	}
	return out
}

var (
	jsonDate = regexp.MustCompile(`^/Date\(-?\d+\)/$`)
	atomDate = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$`)
)

// checkTypes holds each property to its type in the schema: Atom's m:type
// and text, JSON's value kinds.
func checkTypes(t *testing.T, tb *query.Table, e gotEntity, isJSON bool) {
	t.Helper()
	for i, name := range e.names {
		var typ dataset.Type
		switch name {
		case "__Distance":
			typ = dataset.Double
		case "__IntersectedGeom":
			typ = dataset.Geography
		default:
			c := tb.Column(name)
			if c < 0 || tb.Columns[c].Name != name {
				t.Errorf("property %q is not spelled as in the schema", name)
				continue
			}
			typ = tb.Columns[c].Type
		}
		if isJSON {
			v := e.json[i]
			if v == nil {
				continue
			}
			ok := false
			switch typ {
			case dataset.Double:
				_, ok = v.(json.Number)
			case dataset.Long:
				n, isNum := v.(json.Number)
				_, err := n.Int64()
				ok = isNum && err == nil
			case dataset.Boolean:
				_, ok = v.(bool)
			case dataset.DateTime:
				s, isStr := v.(string)
				ok = isStr && jsonDate.MatchString(s)
			default:
				_, ok = v.(string)
			}
			if !ok {
				t.Errorf("%s: JSON value %#v is not an %s", name, v, typ.EDM())
			}
			continue
		}
		wantAttr := typ.EDM()
		if typ == dataset.String {
			wantAttr = ""
		}
		if e.types[i] != wantAttr {
			t.Errorf("%s: m:type %q, want %q", name, e.types[i], wantAttr)
		}
		if e.null[i] {
			continue
		}
		s := e.texts[i]
		var err error
		switch typ {
		case dataset.Double:
			_, err = strconv.ParseFloat(s, 64)
		case dataset.Long:
			_, err = strconv.ParseInt(s, 10, 64)
		case dataset.Boolean:
			if s != "0" && s != "1" {
				err = strconv.ErrSyntax
			}
		case dataset.DateTime:
			if !atomDate.MatchString(s) {
				err = strconv.ErrSyntax
			}
		}
		if err != nil {
			t.Errorf("%s: Atom text %q is not an %s", name, s, typ.EDM())
		}
	}
}
