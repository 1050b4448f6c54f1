// Package shadow compares the answers of two Query API endpoints, SDS and
// sdsops, to the same requests: the check a team runs before switching an
// application's host, while SDS still answers.
package shadow

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/backoff"
)

// Comparer sends each request to both endpoints and compares the answers.
type Comparer struct {
	SDS, SDSOps string        // base URLs (scheme and host) of the two endpoints
	Client      *http.Client  // nil: a client with a 30 s timeout
	Interval    time.Duration // at least this long between two requests to SDS: its rate limit
	MaxRetries  int           // retries of a throttled (429, 503) SDS request, after its Retry-After
	sleep       func(context.Context, time.Duration) error
	lastSDS     time.Time
}

// Result is the comparison of one request.
type Result struct {
	Request     string // the path and query, key redacted
	StatusSDS   int    // 0: no answer
	StatusOps   int
	Differences []string // empty: the same
	Err         error    // the request could not be compared
}

// Same reports whether the endpoints answered alike.
func (r Result) Same() bool { return r.Err == nil && len(r.Differences) == 0 }

// ReadRequests reads request URLs, one a line (full URLs as in an access
// log, or paths); blank lines and lines starting with # are skipped.
func ReadRequests(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// Redact hides the key of a request URL, for reports and logs: every
// parameter whose name reads "key" once decoded and trimmed, as the Query
// API reads names (so ?%6Bey=… is hidden too).
func Redact(u string) string {
	path, q, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		raw, _, _ := strings.Cut(p, "=")
		name := raw
		if n, err := url.QueryUnescape(raw); err == nil {
			name = n
		}
		if strings.EqualFold(strings.TrimSpace(name), "key") {
			parts[i] = raw + "=REDACTED"
		}
	}
	return path + "?" + strings.Join(parts, "&")
}

// pathAndQuery keeps what an application sends after the host.
func pathAndQuery(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") {
		return raw, nil
	}
	u, err := url.Parse(strings.ReplaceAll(raw, " ", "%20"))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("not a URL or a path: %s", Redact(raw))
	}
	pq := u.EscapedPath()
	if u.RawQuery != "" {
		pq += "?" + u.RawQuery
	}
	return pq, nil
}

// Compare runs every request against both endpoints, in order, pausing
// between SDS requests for its rate limit.
func (c *Comparer) Compare(ctx context.Context, requests []string) ([]Result, error) {
	var out []Result
	for _, raw := range requests {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, c.compareOne(ctx, raw))
	}
	return out, nil
}

func (c *Comparer) compareOne(ctx context.Context, raw string) Result {
	res := Result{Request: Redact(raw)}
	pq, err := pathAndQuery(raw)
	if err != nil {
		res.Err = err
		return res
	}
	res.Request = Redact(pq)
	sdsResp, err := c.getSDS(ctx, pq)
	if err != nil {
		res.Err = fmt.Errorf("SDS: %w", err)
		return res
	}
	opsResp, err := c.get(ctx, c.SDSOps, pq)
	if err != nil {
		res.Err = fmt.Errorf("sdsops: %w", err)
		return res
	}
	res.StatusSDS, res.StatusOps = sdsResp.status, opsResp.status
	if sdsResp.status != opsResp.status {
		res.Differences = append(res.Differences, fmt.Sprintf("status: SDS %d, sdsops %d", sdsResp.status, opsResp.status))
		return res
	}
	if sdsResp.status != http.StatusOK {
		return res
	}
	a, err := decode(sdsResp)
	if err != nil {
		res.Err = fmt.Errorf("SDS's answer: %w", err)
		return res
	}
	b, err := decode(opsResp)
	if err != nil {
		res.Err = fmt.Errorf("sdsops's answer: %w", err)
		return res
	}
	res.Differences = diff(a, b)
	return res
}

type answer struct {
	status int
	ctype  string
	body   []byte
}

func (c *Comparer) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Comparer) wait(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	return backoff.Sleep(ctx, d)
}

// getSDS spaces requests to SDS by Interval and waits out throttling.
func (c *Comparer) getSDS(ctx context.Context, pq string) (answer, error) {
	for attempt := 0; ; attempt++ {
		if d := c.Interval - time.Since(c.lastSDS); d > 0 {
			if err := c.wait(ctx, d); err != nil {
				return answer{}, err
			}
		}
		c.lastSDS = time.Now()
		a, retryAfter, err := c.fetch(ctx, c.SDS, pq)
		if err != nil || (a.status != http.StatusTooManyRequests && a.status != http.StatusServiceUnavailable) || attempt >= c.MaxRetries {
			return a, err
		}
		if err := c.wait(ctx, max(retryAfter, c.Interval)); err != nil {
			return answer{}, err
		}
	}
}

func (c *Comparer) get(ctx context.Context, base, pq string) (answer, error) {
	a, _, err := c.fetch(ctx, base, pq)
	return a, err
}

func (c *Comparer) fetch(ctx context.Context, base, pq string) (answer, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+pq, nil)
	if err != nil {
		return answer{}, 0, errors.New(Redact(err.Error()))
	}
	resp, err := c.client().Do(req)
	if err != nil {
		// net/http errors quote the URL, key included.
		return answer{}, 0, errors.New(Redact(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return answer{}, 0, errors.New(Redact(err.Error()))
	}
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: body}, time.Duration(secs) * time.Second, nil
}

// Entity is an entity of a Query API answer as a client reads it: its
// link, its ID (from the link) and its properties in order.
type Entity struct {
	URI, ID string
	Props   []Prop
}

// Prop is one property as written: in Atom its namespace, m:type and
// text; in JSON its decoded value (json.Number for numbers).
type Prop struct {
	Name, Space, Type string
	Null              bool
	Text              string
	JSON              any
}

var idInURI = regexp.MustCompile(`\('((?:[^']|'')*)'\)$`)

func entityID(uri string) string {
	if m := idInURI.FindStringSubmatch(uri); m != nil {
		if s, err := url.PathUnescape(m[1]); err == nil {
			return strings.ReplaceAll(s, "''", "'")
		}
		return m[1]
	}
	return uri
}

// Decode reads the entities of an answer: Atom (a feed or a bare entry),
// OData JSON (d.results, or d itself), or JSONP around JSON.
func Decode(contentType string, body []byte) ([]Entity, error) {
	if strings.Contains(contentType, "javascript") { // JSONP: the argument of the call
		open, end := strings.IndexByte(string(body), '('), strings.LastIndexByte(string(body), ')')
		if open < 0 || end < open {
			return nil, errors.New("JSONP without a call")
		}
		body = body[open+1 : end]
		if i := lastTopLevelComma(body); i >= 0 { // drop jsonso
			body = body[:i]
		}
	}
	if strings.Contains(contentType, "json") || strings.Contains(contentType, "javascript") {
		return decodeJSON(body)
	}
	return decodeAtom(body)
}

func decode(a answer) ([]Entity, error) { return Decode(a.ctype, a.body) }

func lastTopLevelComma(b []byte) int {
	depth, inStr, esc, last := 0, false, false, -1
	for i, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ',' && depth == 0:
			last = i
		}
	}
	return last
}

func decodeJSON(body []byte) ([]Entity, error) {
	var doc struct {
		D json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.D == nil {
		return nil, fmt.Errorf("not OData JSON: %v", err)
	}
	var d struct {
		Results *[]json.RawMessage `json:"results"`
	}
	_ = json.Unmarshal(doc.D, &d)
	raws := []json.RawMessage{doc.D}
	if d.Results != nil {
		raws = *d.Results
	}
	var out []Entity
	for _, raw := range raws {
		var e Entity
		// Objects are read as ordered key lists: property order is part
		// of what a client sees.
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, err
			}
			name, _ := k.(string)
			switch name {
			case "__metadata":
				m, _ := v.(map[string]any)
				e.URI, _ = m["uri"].(string)
				e.ID = entityID(e.URI)
			case "__copyright", "__count":
			default:
				p := Prop{Name: name, JSON: v, Null: v == nil}
				switch v := v.(type) {
				case string:
					p.Text = v
				case json.Number:
					p.Text = v.String()
				case bool:
					p.Text = strconv.FormatBool(v)
				}
				e.Props = append(e.Props, p)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func decodeAtom(body []byte) ([]Entity, error) {
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
	var root struct {
		XMLName xml.Name
		entry
		Entries []entry `xml:"entry"`
	}
	if err := xml.Unmarshal(body, &root); err != nil {
		return nil, fmt.Errorf("not Atom: %v", err)
	}
	entries := root.Entries
	if root.XMLName.Local == "entry" {
		entries = []entry{root.entry}
	}
	var out []Entity
	for _, en := range entries {
		e := Entity{URI: strings.TrimSpace(en.ID)}
		e.ID = entityID(e.URI)
		for _, p := range en.Props.List {
			e.Props = append(e.Props, Prop{Name: p.XMLName.Local, Space: p.XMLName.Space, Type: p.Type, Null: p.Null == "true", Text: p.Text})
		}
		out = append(out, e)
	}
	return out, nil
}

// value is a property normalised for comparison across formats.
type value struct {
	text  string
	num   float64
	isNum bool
	null  bool
}

func normalise(p Prop) value {
	if p.Null {
		return value{null: true}
	}
	if n, ok := p.JSON.(json.Number); ok {
		f, err := n.Float64()
		return value{text: p.Text, num: f, isNum: err == nil}
	}
	switch p.Type {
	case "Edm.Boolean":
		switch p.Text {
		case "1":
			return value{text: "true"}
		case "0":
			return value{text: "false"}
		}
	case "Edm.Double", "Edm.Int64":
		if f, err := strconv.ParseFloat(p.Text, 64); err == nil {
			return value{text: p.Text, num: f, isNum: true}
		}
	}
	return value{text: p.Text}
}

// diff lists what an application would see differ: entities, their
// order, their properties and values. __Distance may differ by 1 m.
func diff(sds, ops []Entity) []string {
	var d []string
	ids := func(es []Entity) []string {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.ID
		}
		return out
	}
	a, b := ids(sds), ids(ops)
	if strings.Join(a, "\x00") != strings.Join(b, "\x00") {
		if sameSet(a, b) {
			d = append(d, fmt.Sprintf("order: SDS %s, sdsops %s", list(a), list(b)))
		} else {
			d = append(d, fmt.Sprintf("entities: SDS %s, sdsops %s", list(a), list(b)))
		}
	}
	byID := map[string]Entity{}
	for _, e := range ops {
		byID[e.ID] = e
	}
	names := func(e Entity) string {
		var n []string
		for _, p := range e.Props {
			n = append(n, p.Name)
		}
		return strings.Join(n, ",")
	}
	for _, e := range sds {
		o, ok := byID[e.ID]
		if !ok {
			continue
		}
		if names(e) != names(o) {
			d = append(d, fmt.Sprintf("entity %s: properties SDS [%s], sdsops [%s]", e.ID, names(e), names(o)))
		}
		theirs := map[string]Prop{}
		for _, p := range o.Props {
			theirs[p.Name] = p
		}
		for _, p := range e.Props {
			q, has := theirs[p.Name]
			if v, w := normalise(p), normalise(q); has && !sameValue(p.Name, v, w) {
				d = append(d, fmt.Sprintf("entity %s: %s: SDS %s, sdsops %s", e.ID, p.Name, v, w))
			}
		}
	}
	return d
}

func (v value) String() string {
	if v.null {
		return "null"
	}
	return strconv.Quote(v.text)
}

func sameValue(name string, a, b value) bool {
	switch {
	case a.null || b.null:
		return a.null == b.null
	case a.isNum && b.isNum:
		if name == "__Distance" {
			return math.Abs(a.num-b.num) <= 0.001
		}
		return a.num == b.num
	}
	return a.text == b.text
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		if m[s]--; m[s] < 0 {
			return false
		}
	}
	return true
}

func list(ids []string) string {
	const max = 10
	if len(ids) > max {
		return "[" + strings.Join(ids[:max], " ") + fmt.Sprintf(" … %d in all]", len(ids))
	}
	return "[" + strings.Join(ids, " ") + "]"
}
