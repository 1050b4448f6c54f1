package sdsemu

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Server is the emulated Spatial Data Services endpoint. It is an http.Handler: SDS routes live
// under /REST/v1, the emulator's own admin API under /_emu/.
type Server struct {
	cfg   Config
	keys  map[string]keyInfo // immutable after New
	admin http.Handler

	mu       sync.Mutex
	accounts []*account
	jobs     []*job // creation order
	faults   []*Fault
	requests []RequestRecord

	sizeMu sync.Mutex
	sizes  map[Dataset]*sizeEntry

	files fileStore // uploaded data sources
}

type sizeEntry struct {
	once sync.Once
	n    int64
}

// New validates cfg and returns a server holding a private copy of its accounts.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sdsemu: invalid config: %w", err)
	}
	s := &Server{cfg: cfg, sizes: map[Dataset]*sizeEntry{}}
	s.accounts, s.keys = buildState(cfg)
	if err := s.AddFault(cfg.Faults...); err != nil {
		return nil, fmt.Errorf("sdsemu: %w", err)
	}
	s.cfg.Faults = nil // armed copies live in s.faults
	s.admin = s.adminHandler()
	return s, nil
}

// datasetSize computes a dataset's length once and remembers it, so that concurrent downloads
// of the same version share one counting pass.
func (s *Server) datasetSize(d Dataset) int64 {
	s.sizeMu.Lock()
	e := s.sizes[d]
	if e == nil {
		e = &sizeEntry{}
		s.sizes[d] = e
	}
	s.sizeMu.Unlock()
	e.once.Do(func() { e.n = d.Size() })
	return e.n
}

// request is one SDS request being served.
type request struct {
	w    *statusWriter
	r    *http.Request
	q    map[string]string // lower-cased parameter name -> first value
	key  string
	f    format
	base string   // scheme and host for links
	args []string // path parameters
	rec  *RequestRecord
}

func (q *request) param(name string) string { return q.q[name] }

func (q *request) fail(e *apiError) { writeError(q.w, q.f, e) }

func (q *request) respond(status int, resources []resource) {
	writeEnvelope(q.w, q.f, status, authValid, resources, nil)
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endpoint is one operation on a route.
type endpoint struct {
	method string
	op     string
	handle func(*Server, *request)
}

// matchRoute maps a path to its endpoints and path parameters. Fixed segments are matched
// case-insensitively.
func matchRoute(path string) (eps []endpoint, args []string) {
	parts := strings.Split(strings.TrimPrefix(strings.TrimSuffix(path, "/"), "/"), "/")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "REST") || !strings.EqualFold(parts[1], "v1") {
		return nil, nil
	}
	for _, p := range parts {
		if p == "" {
			return nil, nil
		}
	}
	rest := parts[2:]
	if eps, args := matchLoadRoute(rest); eps != nil {
		return eps, args
	}
	is := func(i int, name string) bool { return strings.EqualFold(rest[i], name) }
	get := func(op string, h func(*Server, *request)) endpoint { return endpoint{http.MethodGet, op, h} }

	switch {
	case len(rest) == 2 && is(0, "Dataflows") && is(1, "ListJobs"):
		return []endpoint{get(OpListJobs, (*Server).listJobs)}, nil
	case len(rest) >= 3 && is(0, "Dataflows") && is(1, "DataSourceDownload"):
		a := rest[2:]
		switch {
		case len(a) == 3 && strings.EqualFold(a[1], "output") &&
			(strings.EqualFold(a[2], "succeeded") || strings.EqualFold(a[2], "failed")):
			// The docs' short output link: {name}/output/succeeded, the newest job's data.
			return []endpoint{get(OpDownloadData, (*Server).downloadData)}, a
		case len(a) == 1, len(a) == 3:
			// The docs' short status URL names only the data source; ours adds access ID and job.
			return []endpoint{get(OpDownloadStatus, (*Server).downloadStatus)}, a
		case len(a) == 2:
			return []endpoint{get(OpCreateDownload, (*Server).createDownload)}, a
		case len(a) == 5 && strings.EqualFold(a[3], "output") &&
			(strings.EqualFold(a[4], "succeeded") || strings.EqualFold(a[4], "failed")):
			return []endpoint{get(OpDownloadData, (*Server).downloadData)}, a
		}
	case is(0, "data"):
		switch {
		case len(rest) == 1:
			return []endpoint{get(OpInfo, (*Server).info)}, nil
		case len(rest) == 3:
			return []endpoint{
				get(OpInfo, (*Server).info),
				{http.MethodDelete, OpDelete, (*Server).deleteDataSource},
			}, rest[1:]
		case len(rest) == 4 && is(3, "$updateDataSource"):
			return []endpoint{get(OpSetPublic, (*Server).setPublic)}, rest[1:3]
		}
	}
	return nil, nil
}

// parseQuery splits the raw query keeping the first value of each name; names are
// case-insensitive, so they are lower-cased.
func parseQuery(raw string) (map[string]string, error) {
	q := map[string]string{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			return nil, fmt.Errorf("malformed query parameter name: %w", err)
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			// The value is not quoted: it might be a key.
			return nil, fmt.Errorf("malformed value of query parameter %s", n)
		}
		n = strings.ToLower(n)
		if _, dup := q[n]; !dup {
			q[n] = v
		}
	}
	return q, nil
}

// outputFormat reads output (alias o): json by default, or xml.
func outputFormat(q map[string]string) (format, error) {
	v, ok := q["output"]
	if !ok {
		v = q["o"]
	}
	switch strings.ToLower(v) {
	case "", "json":
		return formatJSON, nil
	case "xml":
		return formatXML, nil
	}
	return formatJSON, fmt.Errorf("the output parameter must be json or xml")
}

// infoFormat reads $format on the information routes: atom by default, or json. Errors of these
// routes are XML unless JSON was asked for.
func infoFormat(q map[string]string) (format, error) {
	switch strings.ToLower(q["$format"]) {
	case "", "atom":
		return formatXML, nil
	case "json":
		return formatJSON, nil
	}
	return formatXML, fmt.Errorf("the $format parameter must be atom or json")
}

// ServeHTTP serves the SDS routes, recording each request, and the admin API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emu/") {
		s.admin.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	rec := RequestRecord{
		Time:   s.cfg.Now(),
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  redactQuery(r.URL.RawQuery),
	}
	defer func() {
		rec.Status = sw.status
		s.record(rec)
	}()
	s.serve(sw, r, &rec)
}

func (s *Server) serve(w *statusWriter, r *http.Request, rec *RequestRecord) {
	eps, args := matchRoute(r.URL.Path)
	q, qerr := parseQuery(r.URL.RawQuery)
	req := &request{w: w, r: r, q: q, args: args, rec: rec, base: s.baseURL(r)}
	if qerr != nil {
		req.fail(newError(http.StatusBadRequest, qerr.Error()))
		return
	}
	req.key = q["key"]
	rec.KeyClass = s.classify(req.key)
	// Until the operation is known, errors use output/o (JSON when that is invalid too).
	req.f, _ = outputFormat(q)

	if eps == nil {
		req.fail(newError(http.StatusNotFound, "The requested resource was not found."))
		return
	}
	var ep *endpoint
	var allowed []string
	for i := range eps {
		allowed = append(allowed, eps[i].method)
		if eps[i].method == r.Method {
			ep = &eps[i]
		}
	}
	if ep == nil {
		// 405 rather than 400: the resource exists, the method does not apply to it.
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		req.fail(newError(http.StatusMethodNotAllowed, fmt.Sprintf("The HTTP method %s is not supported by this resource.", r.Method)))
		return
	}
	rec.Operation = ep.op
	var ferr error
	if ep.op == OpInfo {
		req.f, ferr = infoFormat(q)
	} else {
		req.f, ferr = outputFormat(q)
	}
	if ferr != nil {
		req.fail(newError(http.StatusBadRequest, ferr.Error()))
		return
	}

	latency, sf := s.takeRequestFaults(ep.op, r.URL.Path)
	if latency > 0 {
		rec.addFault(FaultLatency)
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if sf != nil {
		rec.addFault(FaultStatus)
		req.fail(statusFaultError(sf))
		return
	}
	ep.handle(s, req)
}

// baseURL is where links point: the configured public URL, or the address the client used.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicBaseURL != "" {
		return s.cfg.PublicBaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
