package sdsemu

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Names and keys of testdata/fixture.json.
const (
	fcAccess  = "20181f26d9e94c81acdf9496133d4f23"
	fcName    = "FourthCoffeeSample"
	fcMaster  = "contoso-master-key-7f3a"
	fcQuery   = "contoso-query-key-fc-52d1"
	fcStaged  = "5e8b1c7d3a2f4e60b9d8c7a6f5e4d3c2"
	fcPrior1  = "7a1d9e3c5b2f48d6a0e4c8b6d2f1a3e5"
	fcEntites = 120

	trAccess = "123abc456deffed654cbc32131213411"
	trName   = "Transit"
	trMaster = "contoso-transit-master-9c04"

	ppName = "PaddedPlaces"

	contosoAccountKey = "contoso-account-key-1b7e"

	fabAccess = "fab0c1d2e3f4a5b6c7d8e9f0a1b2c3d4"
	fabName   = "FabrikamStores"
	fabMaster = "fabrikam-master-key-31d5"

	unknownKey = "no-such-key-0000"
)

var allTestKeys = []string{
	fcMaster, fcQuery, trMaster, "contoso-transit-query-e6a8", "contoso-query-key-pp-0a9b",
	contosoAccountKey, fabMaster, "fabrikam-query-key-8b2c", unknownKey,
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is an emulator behind an httptest server, with a fake clock and a captured log.
type env struct {
	t     *testing.T
	emu   *Server
	srv   *httptest.Server
	clock *fakeClock
	log   *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv starts the test fixture with jobs in Manual mode unless mutate says otherwise.
func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	cfg, err := LoadFixture(filepath.Join("testdata", "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2024, 6, 3, 14, 30, 15, 123456700, time.UTC)}
	logBuf := &syncBuffer{}
	cfg.Now = clock.Now
	cfg.Manual = true
	cfg.Logger = slog.New(slog.NewTextHandler(logBuf, nil))
	if mutate != nil {
		mutate(&cfg)
	}
	emu, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, emu: emu, srv: newServer(t, emu), clock: clock, log: logBuf}
	t.Cleanup(func() {
		// Neither the request log nor the text log may ever hold a key.
		recs, _ := json.Marshal(emu.Requests())
		assertNoKey(t, "request log", string(recs))
		assertNoKey(t, "log output", logBuf.String())
	})
	return e
}

// newServer serves emu over HTTP for the test's lifetime.
func newServer(t *testing.T, emu *Server) *httptest.Server {
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return srv
}

func assertNoKey(t *testing.T, where, s string) {
	t.Helper()
	for _, k := range allTestKeys {
		if strings.Contains(s, k) {
			t.Errorf("%s contains key %q", where, k)
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends a request to the emulator; path includes the query. Every response is checked for
// echoed keys.
func (e *env) do(method, path string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	assertNoKey(e.t, "response body", string(body))
	for name, vs := range res.Header {
		assertNoKey(e.t, "response header "+name, strings.Join(vs, " "))
	}
	return response{status: res.StatusCode, header: res.Header, body: body}
}

func (e *env) get(path string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path)
}

// mustStatus fails the test unless the response has the status.
func mustStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
}

func createPath(accessID, name, key string, extra ...string) string {
	p := "/REST/v1/Dataflows/DataSourceDownload/" + accessID + "/" + name + "?key=" + key
	for _, x := range extra {
		p += "&" + x
	}
	return p
}

// createDownload creates a download job and returns its JSON resource.
func (e *env) createDownload(accessID, name, key string, extra ...string) *jnode {
	e.t.Helper()
	r := e.get(createPath(accessID, name, key, extra...))
	mustStatus(e.t, r, http.StatusCreated)
	return jsonResource(e.t, r.body, 0)
}

// localPath turns an absolute link of the emulator into a path.
func (e *env) localPath(url string) string {
	e.t.Helper()
	if !strings.HasPrefix(url, e.srv.URL) {
		e.t.Fatalf("link %q does not point at the emulator %s", url, e.srv.URL)
	}
	return strings.TrimPrefix(url, e.srv.URL)
}

// linkURL returns the URL of the link with the role (and name, if given) of a JSON resource.
func linkURL(t *testing.T, res *jnode, role, name string) string {
	t.Helper()
	for _, l := range res.get("links").items {
		if l.get("role").str() == role && (name == "" || l.get("name").str() == name) {
			return l.get("url").str()
		}
	}
	t.Fatalf("no link role=%s name=%s in %v", role, name, res.shape())
	return ""
}

// jsonResource decodes a JSON envelope and returns its i-th resource.
func jsonResource(t *testing.T, body []byte, i int) *jnode {
	t.Helper()
	root := parseJSON(t, body)
	return root.get("resourceSets", 0, "resources", i)
}

// jnode is a JSON value that keeps the order of object keys.
type jnode struct {
	keys   []string
	fields map[string]*jnode
	items  []*jnode
	value  any
	isObj  bool
	isArr  bool
}

func parseJSON(t *testing.T, data []byte) *jnode {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := readJSON(dec)
	if err != nil {
		t.Fatalf("parse JSON: %v\n%s", err, data)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("trailing data after JSON value: %s", data)
	}
	return n
}

func readJSON(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		n := &jnode{isObj: true, fields: map[string]*jnode{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			child, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.fields[k] = child
		}
		_, err := dec.Token()
		return n, err
	case json.Delim('['):
		n := &jnode{isArr: true}
		for dec.More() {
			child, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, child)
		}
		_, err := dec.Token()
		return n, err
	}
	return &jnode{value: tok}, nil
}

// get walks object keys (string) and array indexes (int); a missing step gives an empty node.
func (n *jnode) get(path ...any) *jnode {
	cur := n
	for _, p := range path {
		var next *jnode
		switch p := p.(type) {
		case string:
			next = cur.fields[p]
		case int:
			if p < len(cur.items) {
				next = cur.items[p]
			}
		}
		if next == nil {
			return &jnode{}
		}
		cur = next
	}
	return cur
}

func (n *jnode) has(key string) bool { _, ok := n.fields[key]; return ok }

func (n *jnode) str() string {
	switch v := n.value.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	}
	return fmt.Sprint(n.value)
}

func (n *jnode) int() int {
	var i int
	_, _ = fmt.Sscan(n.str(), &i)
	return i
}

// shape lists every key path in document order, arrays written as [].
func (n *jnode) shape() []string {
	var out []string
	var walk func(n *jnode, prefix string)
	walk = func(n *jnode, prefix string) {
		switch {
		case n.isObj:
			for _, k := range n.keys {
				out = append(out, prefix+k)
				walk(n.fields[k], prefix+k+".")
			}
		case n.isArr:
			for _, it := range n.items {
				walk(it, strings.TrimSuffix(prefix, ".")+"[].")
			}
		}
	}
	walk(n, "")
	return out
}

// xnode is an element of a response envelope, with prefixes as written.
// Exports (DataSets) are read with package dataset instead.
type xnode struct {
	name     string
	attrs    []xml.Attr
	children []*xnode
	text     string
}

func xmlName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// parseXML builds the element tree, checking that start and end tags match.
func parseXML(t *testing.T, data []byte) *xnode {
	t.Helper()
	root, err := readXML(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse XML: %v\n%s", err, data)
	}
	return root
}

func readXML(r io.Reader) (*xnode, error) {
	dec := xml.NewDecoder(r)
	var stack []*xnode
	var root *xnode
	for {
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: xmlName(tok.Name), attrs: tok.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("second root element %s", n.name)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != xmlName(tok.Name) {
				return nil, fmt.Errorf("unexpected end element %s", xmlName(tok.Name))
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if root == nil || len(stack) != 0 {
		return nil, fmt.Errorf("incomplete document")
	}
	return root, nil
}

func (n *xnode) child(names ...string) *xnode {
	cur := n
	for _, name := range names {
		var next *xnode
		for _, c := range cur.children {
			if c.name == name {
				next = c
				break
			}
		}
		if next == nil {
			return &xnode{}
		}
		cur = next
	}
	return cur
}

func (n *xnode) all(name string) []*xnode {
	var out []*xnode
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func (n *xnode) attr(name string) string {
	for _, a := range n.attrs {
		if xmlName(a.Name) == name {
			return a.Value
		}
	}
	return ""
}

func (n *xnode) value() string { return strings.TrimSpace(n.text) }

// shape lists elements and attributes in document order. Namespace declarations (order not
// significant) and xsi:nil (a value, not structure) are left out and checked separately.
func (n *xnode) shape() []string {
	var out []string
	var walk func(n *xnode, prefix string)
	walk = func(n *xnode, prefix string) {
		p := prefix + n.name
		out = append(out, p)
		for _, a := range n.attrs {
			name := xmlName(a.Name)
			if name == "xmlns" || a.Name.Space == "xmlns" || name == "xsi:nil" {
				continue
			}
			out = append(out, p+"@"+name)
		}
		for _, c := range n.children {
			walk(c, p+"/")
		}
	}
	walk(n, "")
	return out
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// examplesDir is the folder of the documentation's example bodies: SDS_EXAMPLES_DIR, or the
// copy internal/sds keeps in the repository.
func examplesDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SDS_EXAMPLES_DIR")
	if dir == "" {
		dir = filepath.Join("..", "sds", "testdata", "docs-examples")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("documentation examples not available (%v): expected in internal/sds/testdata/docs-examples, or set SDS_EXAMPLES_DIR", err)
	}
	return dir
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func assertShape(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !equalStrings(got, want) {
		t.Errorf("%s: structure differs\n got: %s\nwant: %s", what, strings.Join(got, " "), strings.Join(want, " "))
	}
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }
