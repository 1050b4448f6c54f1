package queryapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/query"
)

// DefaultCopyright is the __copyright of answers unless the operator sets
// another: the data is the data source owner's, not Microsoft's.
const DefaultCopyright = "Served by sdsops from an archive of this data source. The data belongs to its owner."

// Handler serves GET and HEAD on
// /REST/v1/data/{accessId}/{dataSourceName}/{entityTypeName}[('{entityId}')].
type Handler struct {
	Catalog Catalog
	// AccountKeys are the SHA-256 hashes of the Bing Maps keys of the
	// account: any of them queries a public data source, and a private
	// one without a query key. The master key's hash may be among them.
	AccountKeys [][32]byte
	// MasterKeys query every data source, as the master key did in SDS.
	MasterKeys [][32]byte
	Copyright  string       // "" for DefaultCopyright
	Log        *slog.Logger // nil: slog.Default(); never given a key
	Now        func() time.Time
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	jsonErr := wantsJSON(r.URL.RawQuery)
	defer func() {
		if v := recover(); v != nil {
			h.logger().Error("query failed", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, r, jsonErr, &query.Error{Status: http.StatusInternalServerError, Msg: "The query could not be answered because of a problem on the server."})
		}
	}()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeError(w, r, jsonErr, &query.Error{Status: http.StatusMethodNotAllowed, Msg: "The Query API answers GET and HEAD only."})
		return
	}
	status, body, ctype, err := h.answer(r.Context(), r)
	if err != nil {
		var qe *query.Error
		if !errors.As(err, &qe) {
			h.logger().Error("query failed", "path", r.URL.Path, "error", err)
			qe = &query.Error{Status: http.StatusServiceUnavailable, Msg: "The data source cannot be queried right now; try again later."}
			w.Header().Set("Retry-After", "5")
		}
		writeError(w, r, jsonErr, qe)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (h *Handler) logger() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// target is what a request's path names.
type target struct {
	accessID, name, entityType string
	id                         string
	byID                       bool
}

func parsePath(escaped string) (target, error) {
	var t target
	parts := strings.Split(strings.Trim(escaped, "/"), "/")
	if len(parts) != 6 || !strings.EqualFold(parts[0], "REST") || !strings.EqualFold(parts[1], "v1") || !strings.EqualFold(parts[2], "data") {
		return t, &query.Error{Status: http.StatusNotFound, Msg: "Not a Query API path: use /REST/v1/data/{accessId}/{dataSourceName}/{entityTypeName}."}
	}
	var seg [3]string
	for i := range seg {
		s, err := url.PathUnescape(parts[3+i])
		if err != nil || s == "" {
			return t, &query.Error{Status: http.StatusBadRequest, Msg: "The path is not URL-encoded correctly."}
		}
		seg[i] = s
	}
	t.accessID, t.name, t.entityType = seg[0], seg[1], seg[2]
	if open := strings.IndexByte(t.entityType, '('); open >= 0 {
		inner := t.entityType[open+1:]
		t.entityType, t.byID = t.entityType[:open], true
		if !strings.HasSuffix(inner, ")") {
			return t, &query.Error{Status: http.StatusBadRequest, Msg: "A query by ID is written {entityTypeName}('{entityId}')."}
		}
		inner = strings.TrimSuffix(inner, ")")
		if len(inner) >= 2 && inner[0] == '\'' && inner[len(inner)-1] == '\'' {
			inner = strings.ReplaceAll(inner[1:len(inner)-1], "''", "'")
		}
		if inner == "" {
			return t, &query.Error{Status: http.StatusBadRequest, Msg: "A query by ID needs an entity ID: {entityTypeName}('{entityId}')."}
		}
		t.id = inner
	}
	return t, nil
}

// answer computes the body of a successful request, or the error to send.
func (h *Handler) answer(ctx context.Context, r *http.Request) (int, []byte, string, error) {
	tg, err := parsePath(r.URL.EscapedPath())
	if err != nil {
		return 0, nil, "", err
	}
	params, err := query.ParseParams(r.URL.RawQuery)
	if err != nil {
		return 0, nil, "", err
	}
	req, err := query.ParseRequest(params)
	if err != nil {
		return 0, nil, "", err
	}
	if !h.mayPass(tg.accessID, tg.name, req.Key) {
		return 0, nil, "", errDenied
	}
	src, err := h.Catalog.Source(ctx, tg.accessID, tg.name)
	if errors.Is(err, ErrNoSource) {
		return 0, nil, "", &query.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("There is no data source %s with access ID %s.", clip(tg.name), clip(tg.accessID))}
	}
	if err != nil {
		return 0, nil, "", err
	}
	if !h.allowed(src, req.Key) {
		return 0, nil, "", errDenied
	}
	tb := src.Published
	if req.Staging {
		if tb = src.Staged; tb == nil {
			return 0, nil, "", &query.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("Data source %s has no staged version.", src.Name)}
		}
	}
	if !strings.EqualFold(tg.entityType, tb.EntityType) {
		return 0, nil, "", &query.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("Data source %s has no entity type %s.", src.Name, clip(tg.entityType))}
	}
	base := baseURL(r) + "/REST/v1/data/" + url.PathEscape(src.AccessID) + "/" + url.PathEscape(src.Name) + "/" + url.PathEscape(tb.EntityType)
	pg := page{count: -1, copyright: h.Copyright, updated: h.now(), feedID: "uuid:" + newUUID() + ";id=1"}
	if pg.copyright == "" {
		pg.copyright = DefaultCopyright
	}
	var q *query.Query
	if tg.byID {
		if q, err = query.ParseSelect(tb, params); err != nil {
			return 0, nil, "", err
		}
		i, ok := tb.Lookup(tg.id)
		if !ok {
			return 0, nil, "", &query.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("There is no entity with ID %s.", clip(tg.id))}
		}
		pg.entities = []entity{{uri: entityURI(base, tg.id), props: q.Project(tb, query.Row{Index: i})}}
	} else {
		if q, err = query.Parse(tb, params); err != nil {
			return 0, nil, "", err
		}
		res := tb.Run(q)
		if q.InlineCount {
			pg.count = res.Count
		}
		pg.entities = make([]entity, len(res.Rows))
		for k, row := range res.Rows {
			pg.entities[k] = entity{uri: entityURI(base, tb.ID(row.Index)), props: q.Project(tb, row)}
		}
	}
	if req.Format == query.Atom {
		if tg.byID {
			return http.StatusOK, atomEntry(pg), "application/atom+xml; charset=utf-8", nil
		}
		return http.StatusOK, atomFeed(pg), "application/atom+xml; charset=utf-8", nil
	}
	body := jsonDoc(pg, tg.byID)
	if req.JSONP == "" {
		return http.StatusOK, body, "application/json; charset=utf-8", nil
	}
	return http.StatusOK, jsonp(req, body), "application/javascript; charset=utf-8", nil
}

// jsonp wraps JSON in a call of the (checked) callback, with jsonso as a
// string second argument. The leading comment keeps the body from being
// read as anything but script.
func jsonp(req *query.Request, body []byte) []byte {
	out := []byte("/**/" + req.JSONP + "(")
	out = append(out, body...)
	if req.HasJSONSO {
		out = append(out, ',')
		out = append(out, jsonStringOf(req.JSONState)...)
	}
	return append(out, ");"...)
}

// allowed applies SDS's key rules in constant time: every candidate hash
// is compared, whichever matches.
// errDenied is SDS's answer to a missing or wrong key.
var errDenied = &query.Error{Status: http.StatusUnauthorized, Msg: "Access was denied. You may have entered your credentials incorrectly, or you might not have access to the requested resource or operation."}

// KeyHolder is a Catalog that knows a data source's query key (its hash)
// without loading the data source.
type KeyHolder interface {
	QueryKey(accessID, name string) *[32]byte
}

// mayPass refuses, before the data source is loaded, a key that no check
// of allowed could accept: a request without the right key must not make
// the function load an archive.
func (h *Handler) mayPass(accessID, name, key string) bool {
	if key == "" {
		return false
	}
	kh, ok := h.Catalog.(KeyHolder)
	if !ok {
		return true // allowed decides, after the load
	}
	got := HashKey(key)
	match := 0
	for _, k := range append(h.MasterKeys, h.AccountKeys...) {
		match |= subtle.ConstantTimeCompare(got[:], k[:])
	}
	if qk := kh.QueryKey(accessID, name); qk != nil {
		match |= subtle.ConstantTimeCompare(got[:], qk[:])
	}
	return match == 1
}

func (h *Handler) allowed(src *Source, key string) bool {
	if key == "" {
		return false
	}
	got := HashKey(key)
	match := 0
	for _, k := range h.MasterKeys {
		match |= subtle.ConstantTimeCompare(got[:], k[:])
	}
	if src.QueryKey != nil && !src.Public {
		match |= subtle.ConstantTimeCompare(got[:], src.QueryKey[:])
		return match == 1
	}
	for _, k := range h.AccountKeys {
		match |= subtle.ConstantTimeCompare(got[:], k[:])
	}
	return match == 1
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// baseURL is the scheme and host the request came to, so that links in
// the answer lead back here: https behind a TLS-terminating endpoint
// (X-Forwarded-Proto), otherwise as received.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func entityURI(base, id string) string {
	return base + "('" + url.PathEscape(strings.ReplaceAll(id, "'", "''")) + "')"
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func clip(s string) string {
	const max = 60
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
