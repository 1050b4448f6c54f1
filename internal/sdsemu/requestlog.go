package sdsemu

import (
	"net/url"
	"strings"
	"time"
)

// KeyClass says what kind of key a request presented, so tests can check key handling without
// the key value ever being recorded.
type KeyClass string

// Key classes. A key is classed by what it is anywhere in the configuration, not by whether it
// fits the data source of the request.
const (
	KeyNone    KeyClass = "none"    // no key parameter, or an empty one
	KeyMaster  KeyClass = "master"  // the master key of a data source
	KeyQuery   KeyClass = "query"   // the query key of a data source
	KeyAccount KeyClass = "account" // another key of an account
	KeyUnknown KeyClass = "unknown" // belongs to no account
)

// Redacted replaces key values in recorded and logged queries.
const Redacted = "REDACTED"

// RequestRecord is one received SDS request.
type RequestRecord struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// Query is the raw query string with the value of every key parameter replaced by Redacted.
	Query     string   `json:"query"`
	KeyClass  KeyClass `json:"keyClass"`
	Operation string   `json:"operation,omitempty"`
	// Status is the HTTP status answered (200 for a download whose connection was taken over
	// by a fault).
	Status int `json:"status"`
	// Fault names the fault kinds that fired on the request.
	Fault string `json:"fault,omitempty"`
}

func (r *RequestRecord) addFault(kind FaultKind) {
	if r.Fault != "" {
		r.Fault += ","
	}
	r.Fault += string(kind)
}

// redactQuery replaces the value of every parameter named key (any case) and leaves the rest of
// the raw query as it was.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if strings.EqualFold(name, "key") || strings.EqualFold(name, "queryKey") {
			parts[i] = name + "=" + Redacted
		}
	}
	return strings.Join(parts, "&")
}

// maxRequestRecords bounds the log of a long-running emulator; the oldest records go first.
const maxRequestRecords = 100000

func (s *Server) record(r RequestRecord) {
	s.mu.Lock()
	if len(s.requests) >= maxRequestRecords {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)-maxRequestRecords/2:]...)
	}
	s.requests = append(s.requests, r)
	s.mu.Unlock()
	if s.cfg.Logger != nil {
		attrs := []any{"method", r.Method, "path", r.Path, "query", r.Query,
			"key", string(r.KeyClass), "op", r.Operation, "status", r.Status}
		if r.Fault != "" {
			attrs = append(attrs, "fault", r.Fault)
		}
		s.cfg.Logger.Info("request", attrs...)
	}
}

// Requests returns the SDS requests received so far, oldest first.
func (s *Server) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(make([]RequestRecord, 0, len(s.requests)), s.requests...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}
