package sds

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Error classes a caller can branch on with errors.Is.
var (
	// ErrUnauthorized: no key, an invalid key, or a key that is not the
	// data source's master key (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDataSourceLimit: a load that would create a data source was
	// refused because the account already has its maximum (25 on
	// enterprise accounts): HTTP 403 with a message saying so. A 403
	// without one stays ErrUnauthorized.
	ErrDataSourceLimit = errors.New("data source limit reached")
	// ErrNotFound: the data source, job or output does not exist (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrBadRequest: the service rejected the request (HTTP 400).
	ErrBadRequest = errors.New("bad request")
	// ErrThrottled: HTTP 429, or 503 with Retry-After, or the account's job
	// limits (10 concurrent / 50 per 24 h on enterprise accounts).
	ErrThrottled = errors.New("throttled")
	// ErrUnavailable: HTTP 500/503, timeouts, resets and short bodies.
	ErrUnavailable = errors.New("service unavailable")
	// ErrJobAborted: the job ended with status Aborted.
	ErrJobAborted = errors.New("job aborted")
	// ErrInvalidInput: the request was refused before anything was sent
	// (malformed accessId or name, a link to a foreign host, ...).
	ErrInvalidInput = errors.New("invalid input")
	// ErrDecode: the response could not be understood.
	ErrDecode = errors.New("malformed response")
)

// Error describes a failed SDS operation. Its message never contains the
// master key: URLs in it are redacted.
type Error struct {
	Class      error         // one of the Err* values above
	Op         string        // operation, e.g. "create download job"
	StatusCode int           // HTTP status, 0 when no response was received
	Message    string        // the service's error details or job error message
	TraceID    string        // the service's trace id, when it sent one
	RetryAfter time.Duration // from Retry-After, when the service sent one
	Err        error         // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sds: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Class.Error())
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " [traceId %s]", e.TraceID)
	}
	return b.String()
}

// Is reports whether target is this error's class, so that
// errors.Is(err, sds.ErrThrottled) works through any wrapping.
func (e *Error) Is(target error) bool { return target == e.Class }

func (e *Error) Unwrap() error { return e.Err }

// isDataSourceLimit reports whether a 403 says the account has its
// maximum of data sources. The load docs give that reason for a 403 ("the
// maximum of 25 published data sources") but no wording, so a message
// naming data sources and a maximum or limit counts; any other 403 keeps
// its wrong-key meaning.
func isDataSourceLimit(code int, msg string) bool {
	if code != 403 {
		return false
	}
	m := strings.ToLower(msg)
	return (strings.Contains(m, "data sources") || strings.Contains(m, "datasources") || strings.Contains(m, "data source limit")) &&
		(strings.Contains(m, "maximum") || strings.Contains(m, "limit"))
}

// classForStatus maps an HTTP status to an error class.
func classForStatus(code int, retryAfter bool) error {
	switch {
	case code == 401 || code == 403:
		return ErrUnauthorized
	case code == 404:
		return ErrNotFound
	case code == 429:
		return ErrThrottled
	case code == 503 && retryAfter:
		return ErrThrottled
	case code >= 500:
		return ErrUnavailable
	default:
		return ErrBadRequest
	}
}
