package sdsemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Operation names, used to aim faults and in the request log.
const (
	OpCreateDownload = "createDownload"
	OpDownloadStatus = "downloadStatus"
	OpDownloadData   = "downloadData"
	OpDelete         = "delete"
	OpSetPublic      = "setPublic"
	OpInfo           = "info"
	OpListJobs       = "listJobs"
	// Load, publish and rollback operations are in load.go.

	// OpAny aims a fault at every SDS operation (not at unknown routes or the admin API).
	OpAny = "*"
)

var knownOps = []string{OpCreateDownload, OpDownloadStatus, OpDownloadData, OpDelete, OpSetPublic, OpInfo, OpListJobs,
	OpLoad, OpLoadStatus, OpLoadFailed, OpPublish, OpPublishStatus, OpRollback, OpRollbackStat, OpAny}

// FaultKind says what a fault does.
type FaultKind string

// Fault kinds.
const (
	// FaultStatus answers with Status (and Retry-After when RetryAfter > 0) before the request is
	// processed, so it has no effect on state.
	FaultStatus FaultKind = "status"
	// FaultLatency waits Latency before the request is processed.
	FaultLatency FaultKind = "latency"
	// FaultAbort makes the next jobs created by a matching request end Aborted with Message.
	FaultAbort FaultKind = "abort"
	// FaultTruncate announces the full Content-Length of a download, sends Bytes bytes of the
	// body and closes the connection.
	FaultTruncate FaultKind = "truncate"
	// FaultReset sends the headers and Bytes bytes of a download, then resets the connection.
	FaultReset FaultKind = "reset"
	// FaultOverlong announces Content-Length: Bytes but sends the whole, longer body.
	FaultOverlong FaultKind = "overlong"
	// FaultStall sends the headers and Bytes bytes of a download or job status body (download,
	// load, publish or rollback status), then sends nothing more for Latency (default: until
	// the client goes away) and closes the connection.
	FaultStall FaultKind = "stall"
	// FaultZip delivers a download as a ZIP archive holding the XML file, as Microsoft's own
	// client accepts.
	FaultZip FaultKind = "zip"
	// FaultGzip delivers a download gzipped, with Content-Encoding: gzip.
	FaultGzip FaultKind = "gzip"
	// FaultLocationOnly answers a create download request without a self link: the status URL
	// is only in the Location header.
	FaultLocationOnly FaultKind = "locationOnly"
	// FaultEchoKey ends the error log of an aborted load (loadFailed) with the request URL, the
	// key in its query included, as a service echoing its request would.
	FaultEchoKey FaultKind = "echoKey"
	// FaultErrorDetailsOnly answers the status of an aborted download job without the job's
	// errorMessage: the reason is only in the envelope's errorDetails.
	FaultErrorDetailsOnly FaultKind = "errorDetailsOnly"
	// FaultNoTotal answers the status of a completed download job without its
	// totalEntityCount, as a job that gives no total.
	FaultNoTotal FaultKind = "noTotal"
)

// maxStall bounds a stall fault without a Latency, so that a server never hangs forever.
const maxStall = 10 * time.Minute

const defaultAbortMessage = "The job could not be completed because of an internal error."

// Fault is one armed fault. It fires on each matching request (for abort: each job created by a
// matching request; for truncate, reset and overlong: each successful download) until its count
// runs out.
type Fault struct {
	// Op is an operation name (OpCreateDownload ...) or OpAny.
	Op string `json:"op"`
	// Path, when set, must occur in the request path (case-insensitive).
	Path string    `json:"path,omitempty"`
	Kind FaultKind `json:"kind"`
	// Times is how often the fault fires: 0 means once, -1 forever. Faults() reports what is
	// left.
	Times int `json:"times,omitempty"`
	// Status is the HTTP status of a status fault (400..599).
	Status int `json:"status,omitempty"`
	// RetryAfter, in seconds, adds a Retry-After header to a status fault.
	RetryAfter int `json:"retryAfter,omitempty"`
	// Message is the error detail of a status fault or the error message of an aborted job.
	Message string `json:"message,omitempty"`
	// Latency is the delay of a latency fault; in JSON a Go duration string ("250ms") or a
	// number of milliseconds.
	Latency time.Duration `json:"-"`
	// Bytes is how many body bytes a truncate or reset fault sends, or the Content-Length an
	// overlong fault announces.
	Bytes int64 `json:"bytes,omitempty"`
}

type faultJSON Fault // no methods: avoids recursion in (Un)MarshalJSON

// MarshalJSON writes Latency as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	var lat string
	if f.Latency != 0 {
		lat = f.Latency.String()
	}
	return json.Marshal(struct {
		faultJSON
		Latency string `json:"latency,omitempty"`
	}{faultJSON(f), lat})
}

// UnmarshalJSON accepts Latency as a duration string or a number of milliseconds and rejects
// unknown fields, so that a misspelt fault does not silently do nothing.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var aux struct {
		faultJSON
		Latency json.RawMessage `json:"latency,omitempty"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	*f = Fault(aux.faultJSON)
	if len(aux.Latency) == 0 {
		return nil
	}
	var s string
	if err := json.Unmarshal(aux.Latency, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		f.Latency = d
		return nil
	}
	var ms float64
	if err := json.Unmarshal(aux.Latency, &ms); err != nil {
		return fmt.Errorf("latency must be a duration string or milliseconds: %w", err)
	}
	f.Latency = time.Duration(ms * float64(time.Millisecond))
	return nil
}

// ParseFaults reads a JSON array of faults and validates them.
func ParseFaults(data []byte) ([]Fault, error) {
	var fs []Fault
	if err := json.Unmarshal(data, &fs); err != nil {
		return nil, fmt.Errorf("parse faults: %w", err)
	}
	for i, f := range fs {
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("fault #%d: %w", i+1, err)
		}
	}
	return fs, nil
}

func (f Fault) validate() error {
	if !slices.ContainsFunc(knownOps, func(op string) bool { return strings.EqualFold(op, f.Op) }) {
		return fmt.Errorf("op %q is not one of %s", f.Op, strings.Join(knownOps, ", "))
	}
	if f.Times < -1 {
		return fmt.Errorf("times must be -1 (forever), 0 (once) or a positive count")
	}
	onlyFor := func(ops ...string) error {
		if f.Op == OpAny || slices.ContainsFunc(ops, func(op string) bool { return strings.EqualFold(op, f.Op) }) {
			return nil
		}
		return fmt.Errorf("a %s fault applies only to %s", f.Kind, strings.Join(ops, ", "))
	}
	switch f.Kind {
	case FaultStatus:
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("status must be between 400 and 599")
		}
		if f.RetryAfter < 0 {
			return fmt.Errorf("retryAfter must not be negative")
		}
	case FaultLatency:
		if f.Latency <= 0 {
			return fmt.Errorf("latency must be positive")
		}
	case FaultAbort:
		return onlyFor(OpCreateDownload, OpDelete, OpSetPublic, OpLoad, OpPublish, OpRollback)
	case FaultTruncate, FaultReset, FaultOverlong:
		if f.Bytes < 0 {
			return fmt.Errorf("bytes must not be negative")
		}
		return onlyFor(OpDownloadData)
	case FaultStall:
		if f.Bytes < 0 || f.Latency < 0 {
			return fmt.Errorf("bytes and latency must not be negative")
		}
		return onlyFor(OpDownloadData, OpDownloadStatus, OpLoadStatus, OpPublishStatus, OpRollbackStat)
	case FaultZip, FaultGzip:
		return onlyFor(OpDownloadData)
	case FaultLocationOnly:
		return onlyFor(OpCreateDownload)
	case FaultErrorDetailsOnly, FaultNoTotal:
		return onlyFor(OpDownloadStatus)
	case FaultEchoKey:
		return onlyFor(OpLoadFailed)
	default:
		return fmt.Errorf("kind %q is not one of status, latency, abort, truncate, reset, overlong, stall, zip, gzip, locationOnly, errorDetailsOnly, echoKey, noTotal", f.Kind)
	}
	return nil
}

func (f *Fault) matches(op, path string) bool {
	if f.Op != OpAny && !strings.EqualFold(f.Op, op) {
		return false
	}
	return f.Path == "" || strings.Contains(strings.ToLower(path), strings.ToLower(f.Path))
}

// AddFault arms faults after the ones already armed.
func (s *Server) AddFault(faults ...Fault) error {
	for i, f := range faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("fault #%d: %w", i+1, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		if f.Times == 0 {
			f.Times = 1
		}
		s.faults = append(s.faults, &f)
	}
	return nil
}

// ClearFaults disarms all faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults returns the armed faults; Times is what is left (-1: forever).
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, *f)
	}
	return out
}

// takeFaultLocked fires the first armed fault of one of the kinds that matches the request and
// counts it down.
func (s *Server) takeFaultLocked(op, path string, kinds ...FaultKind) *Fault {
	for i, f := range s.faults {
		if !slices.Contains(kinds, f.Kind) || !f.matches(op, path) {
			continue
		}
		fired := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return &fired
	}
	return nil
}

// takeRequestFaults fires the faults that act before a request is processed: the total latency
// of every matching latency fault, and the first matching status fault.
func (s *Server) takeRequestFaults(op, path string) (time.Duration, *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total time.Duration
	for _, f := range s.faults {
		if f.Kind == FaultLatency && f.matches(op, path) {
			total += f.Latency
			if f.Times > 0 {
				f.Times--
			}
		}
	}
	s.faults = slices.DeleteFunc(s.faults, func(f *Fault) bool { return f.Times == 0 })
	return total, s.takeFaultLocked(op, path, FaultStatus)
}

// takeBodyFault fires the first matching truncate, reset or overlong fault of a download.
func (s *Server) takeBodyFault(path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeFaultLocked(OpDownloadData, path, FaultTruncate, FaultReset, FaultOverlong, FaultStall, FaultZip, FaultGzip)
}

// takeFault fires the first matching fault of one of the kinds.
func (s *Server) takeFault(op, path string, kinds ...FaultKind) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeFaultLocked(op, path, kinds...)
}

// takeAbortLocked reports whether an abort fault marks the job being created.
func (s *Server) takeAbortLocked(op, path string) (string, bool) {
	f := s.takeFaultLocked(op, path, FaultAbort)
	if f == nil {
		return "", false
	}
	if f.Message == "" {
		return defaultAbortMessage, true
	}
	return f.Message, true
}

// statusFaultError is the response of a status fault.
func statusFaultError(f *Fault) *apiError {
	msg := f.Message
	if msg == "" {
		switch f.Status {
		case http.StatusServiceUnavailable:
			msg = "The service is temporarily unavailable. Try again later."
		case http.StatusTooManyRequests:
			msg = "Too many requests. Try again later."
		case http.StatusInternalServerError:
			msg = "The request could not be completed because of an internal error."
		default:
			msg = "The request could not be processed."
		}
	}
	e := &apiError{status: f.Status, details: []string{msg}, retryAfter: f.RetryAfter}
	if f.Status == http.StatusUnauthorized {
		e.auth = authInvalid
	}
	return e
}
