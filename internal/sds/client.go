package sds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is the production SDS host.
const DefaultBaseURL = "https://spatial.virtualearth.net"

// DefaultTimeout bounds a request until its response headers arrive, and
// each silence while its body streams, unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// Client calls the SDS Data Source Management API with one master key. It
// is safe for concurrent use.
type Client struct {
	base    *url.URL // scheme and host only
	key     string
	hc      *http.Client
	retry   RetryPolicy
	xml     bool
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Its redirect policy is replaced so
// that a redirect can never carry the key to another host.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { copied := *hc; c.hc = &copied }
}

// WithRetry sets the retry policy.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithXML asks the service for XML (o=xml) instead of JSON.
func WithXML() Option { return func(c *Client) { c.xml = true } }

// WithTimeout bounds each attempt until the response headers arrive, and
// every wait for the next bytes of a body (default DefaultTimeout): a body may take
// any time in all, but a stalled one fails with ErrUnavailable.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithLogger receives one line per retried attempt. The key is never logged.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// New returns a client for the SDS host at baseURL (scheme and host; a
// trailing /REST/v1 is accepted) using masterKey.
func New(baseURL, masterKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, &Error{Class: ErrInvalidInput, Message: "base URL does not parse", Err: err}
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("base URL %q: want http(s)://host[:port]", u.Redacted())}
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" && !strings.EqualFold(p, "/REST/v1") {
		return nil, &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("base URL path %q: want none or /REST/v1", p)}
	}
	if err := validateKey(masterKey); err != nil {
		return nil, err
	}
	c := &Client{
		base:    &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)},
		key:     masterKey,
		hc:      &http.Client{},
		retry:   DefaultRetry,
		timeout: DefaultTimeout,
		log:     slog.New(slog.DiscardHandler),
		now:     time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if c.retry.MaxAttempts < 1 {
		c.retry.MaxAttempts = 1
	}
	c.hc.CheckRedirect = c.checkRedirect
	return c, nil
}

// ValidateKey reports, as an ErrInvalidInput error, a key that could not be
// sent as a query value as it is. The message never quotes the key.
func ValidateKey(k string) error { return validateKey(k) }

func validateKey(k string) error {
	if k == "" {
		return &Error{Class: ErrInvalidInput, Message: "master key is empty"}
	}
	if len(k) > 512 {
		return &Error{Class: ErrInvalidInput, Message: "master key is longer than 512 bytes"}
	}
	for _, r := range k {
		if r <= ' ' || r >= 0x7f {
			return &Error{Class: ErrInvalidInput, Message: "master key contains spaces, control or non-ASCII characters"}
		}
	}
	return nil
}

// String never shows the key.
func (c *Client) String() string { return "sds.Client(" + c.base.String() + ", key REDACTED)" }

// GoString keeps %#v from printing the key.
func (c *Client) GoString() string { return c.String() }

// LogValue keeps slog from printing the key.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// BaseURL is the only origin the key is sent to.
func (c *Client) BaseURL() string { return c.base.String() }

// endpoint builds a URL under /REST/v1 from path segments, escaping each.
func (c *Client) endpoint(segments ...string) *url.URL {
	u := *c.base
	var raw strings.Builder
	raw.WriteString("/REST/v1")
	for _, s := range segments {
		raw.WriteByte('/')
		raw.WriteString(url.PathEscape(s))
	}
	u.RawPath = raw.String()
	u.Path, _ = url.PathUnescape(u.RawPath)
	return &u
}

// sameOrigin reports whether u may receive the key: same host and port as
// the base URL, and no downgrade from https. An http base accepts https
// links on the same host, since the service writes its links with https.
func (c *Client) sameOrigin(u *url.URL) bool {
	if u.User != nil || !strings.EqualFold(u.Hostname(), c.base.Hostname()) {
		return false
	}
	switch {
	case u.Scheme == c.base.Scheme:
		return effectivePort(u) == effectivePort(c.base)
	case c.base.Scheme == "http" && u.Scheme == "https":
		return u.Port() == "" && c.base.Port() == ""
	}
	return false
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// link parses a URL the service returned and checks that it may receive
// the key, before any connection is made.
func (c *Client) link(op, raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, &Error{Class: ErrInvalidInput, Op: op, Message: "no URL given"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &Error{Class: ErrInvalidInput, Op: op, Message: "URL does not parse"}
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, &Error{Class: ErrInvalidInput, Op: op, Message: fmt.Sprintf("%q is not an absolute http(s) URL", c.redact(truncate(raw, 200)))}
	}
	if !c.sameOrigin(u) {
		return nil, &Error{Class: ErrInvalidInput, Op: op, Message: fmt.Sprintf("refusing to send the master key to %s://%s: only %s is trusted", u.Scheme, u.Host, c.base)}
	}
	if !strings.HasPrefix(strings.ToLower(u.Path), "/rest/v1/") {
		return nil, &Error{Class: ErrInvalidInput, Op: op, Message: fmt.Sprintf("URL path %q is not under /REST/v1/", truncate(u.Path, 200))}
	}
	u.Fragment = ""
	// Drop any key or format the link carries; ours are added per request.
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "key") || strings.EqualFold(k, "o") || strings.EqualFold(k, "output") {
			delete(q, k)
		}
	}
	u.RawQuery = q.Encode()
	return u, nil
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if !c.sameOrigin(req.URL) {
		return fmt.Errorf("refusing redirect to %s://%s", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// keyForms are the encodings the key could appear in within text that
// came from elsewhere.
func (c *Client) keyForms() []string {
	return []string{c.key, url.QueryEscape(c.key), url.PathEscape(c.key)}
}

// redacted replaces the key in text.
const redacted = "REDACTED"

// redact removes the key, in every encoding it could appear in, from text
// that came from elsewhere (service messages, transport errors).
func (c *Client) redact(s string) string {
	for _, form := range c.keyForms() {
		if form != "" {
			s = strings.ReplaceAll(s, form, redacted)
		}
	}
	return s
}

// redactStream removes the key from a stream as redact does from a
// string (a service's error log may echo the request URL).
func (c *Client) redactStream(r io.Reader) io.Reader {
	rr := &redactingReader{r: r, buf: make([]byte, 32<<10)}
	for _, f := range c.keyForms() {
		if f != "" {
			rr.forms = append(rr.forms, []byte(f))
			rr.keep = max(rr.keep, len(f)-1)
		}
	}
	return rr
}

// redactingReader holds back the last bytes that could begin a key until
// the next read shows how they go on, so a key split between reads is
// found too.
type redactingReader struct {
	r     io.Reader
	forms [][]byte
	keep  int    // bytes held back: the longest form less one
	buf   []byte // for reads from r
	in    []byte // read from r, not yet searched to the end
	out   []byte // redacted, not yet returned
	err   error
}

func (r *redactingReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		n, err := r.r.Read(r.buf)
		r.in, r.err = append(r.in, r.buf[:n]...), err
		r.scan(err == io.EOF)
		if err != nil && err != io.EOF {
			r.in = nil // what was held back may be the start of a key
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// scan moves what is certainly complete from in to out, the key replaced;
// at the end of the stream, everything.
func (r *redactingReader) scan(final bool) {
	for {
		at, n := -1, 0
		for _, f := range r.forms {
			if i := bytes.Index(r.in, f); i >= 0 && (at < 0 || i < at || i == at && len(f) > n) {
				at, n = i, len(f)
			}
		}
		if at < 0 {
			break
		}
		r.out = append(append(r.out, r.in[:at]...), redacted...)
		r.in = r.in[at+n:]
	}
	done := len(r.in) - r.keep
	if final {
		done = len(r.in)
	}
	if done > 0 {
		r.out = append(r.out, r.in[:done]...)
		r.in = append(r.in[:0], r.in[done:]...)
	}
}

// request describes one API call.
type request struct {
	op     string
	method string
	u      *url.URL // without the key
	safe   bool     // repeating it cannot create or delete anything
	format bool     // add o=json|xml
	// goneIsDone: a 404 to a repeated attempt means the first attempt, whose
	// answer was lost, already did the work (a repeated DELETE).
	goneIsDone bool
	// gzip: accept a gzip body and leave it packed (a download, unpacked
	// by its reader).
	gzip bool
	// newJob: the answer starts a job, which must come with a status URL.
	newJob bool
	// statusTemplate: the documented status URL's path segments under
	// /REST/v1, {id} standing for the job id, for an answer that gives
	// neither a self link nor a Location header.
	statusTemplate []string
	// whole: the client reads the answer to its end itself, so the whole
	// read, not only each silence, must end before the deadline.
	whole bool
}

// errAlreadyDone reports a repeated request that found its work done.
var errAlreadyDone = errors.New("already done by an earlier attempt")

// do sends req, repeating it as the retry policy allows, and returns a 2xx
// response whose body the caller must close. Until the headers arrive each
// attempt is bounded by the client's timeout; after that, each read of the
// body. A failure while the caller reads the body is not repeated here:
// callers that read a whole answer use readAll, which repeats it.
func (c *Client) do(ctx context.Context, req request) (*http.Response, error) {
	var resp *http.Response
	maybeDone := false // an earlier attempt may have reached the service
	err := c.withRetries(ctx, req.op, func(err error) bool { return retryable(err, req.safe) }, func() error {
		r, err := c.attempt(ctx, req)
		if err == nil {
			resp = r
			return nil
		}
		if maybeDone && req.goneIsDone && errors.Is(err, ErrNotFound) {
			return errAlreadyDone
		}
		maybeDone = maybeDone || outcomeUnknown(err)
		return err
	})
	return resp, err
}

func (c *Client) attempt(ctx context.Context, req request) (*http.Response, error) {
	u := *req.u
	q := u.Query()
	if req.format {
		if c.xml {
			q.Set("o", "xml")
		} else {
			q.Set("o", "json")
		}
	}
	q.Set("key", c.key)
	u.RawQuery = q.Encode()
	where := req.method + " " + req.u.Redacted()

	wait, stop := c.budget(ctx)
	if wait <= 0 {
		return nil, c.noTimeLeft(req.op, where)
	}
	actx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(wait, cancel)
	hreq, err := http.NewRequestWithContext(actx, req.method, u.String(), nil)
	if err != nil {
		timer.Stop()
		cancel()
		return nil, &Error{Class: ErrInvalidInput, Op: req.op, Message: "cannot build request for " + where}
	}
	hreq.Header.Set("Accept", "application/json, application/xml;q=0.9, */*;q=0.5")
	if req.gzip {
		hreq.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := c.hc.Do(hreq)
	headersInTime := timer.Stop()
	if err != nil {
		cancel()
		return nil, c.transportError(ctx, req.op, where, err, headersInTime, wait)
	}
	if !req.whole {
		// A stream handed to the caller may take any time in all: the
		// caller's own deadline governs it.
		stop = time.Time{}
	}
	resp.Body = newIdleBody(resp.Body, c.timeout, stop, cancel, req.op, where)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	// An error answer's body is read for its details, under the same
	// bounds.
	defer resp.Body.Close()
	return nil, c.statusError(req.op, resp)
}

// budget is how long one attempt may wait for its answer, and when an
// answer read whole must have ended: the client's timeout, cut to the time
// left before ctx's deadline less deadlineMargin (a quarter of the time
// left when that is shorter). A stalled service then fails the call with
// ErrUnavailable while the caller can still report it, instead of running
// into the deadline itself. stop is zero without a deadline.
func (c *Client) budget(ctx context.Context) (wait time.Duration, stop time.Time) {
	dl, ok := ctx.Deadline()
	if !ok {
		return c.timeout, time.Time{}
	}
	stop = dl.Add(-min(deadlineMargin, time.Until(dl)/4))
	return min(c.timeout, time.Until(stop)), stop
}

// noTimeLeft is the error of a request not sent because the deadline has
// come.
func (c *Client) noTimeLeft(op, where string) error {
	return &Error{Class: ErrUnavailable, Op: op, Message: where + ": not sent, the deadline has come"}
}

// transportError describes a failed request; headersInTime is false when
// no answer came within wait.
func (c *Client) transportError(ctx context.Context, op, where string, err error, headersInTime bool, wait time.Duration) error {
	// url.Error repeats the full URL, key included: keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	cause := &redactedError{msg: c.redact(err.Error()), err: err}
	switch {
	case ctx.Err() != nil:
		return &Error{Class: ErrUnavailable, Op: op, Message: where + ": cancelled", Err: cause}
	case !headersInTime:
		return &Error{Class: ErrUnavailable, Op: op, Message: fmt.Sprintf("%s: no answer within %s", where, wait.Round(time.Millisecond))}
	case strings.Contains(err.Error(), "refusing redirect"):
		return &Error{Class: ErrInvalidInput, Op: op, Message: where, Err: cause}
	}
	return &Error{Class: ErrUnavailable, Op: op, Message: where, Err: cause}
}

// statusError turns a non-2xx answer into an Error carrying the service's
// own error details when the body has them.
func (c *Client) statusError(op string, resp *http.Response) error {
	retryAfter, hasRetryAfter := parseRetryAfter(resp.Header, c.now())
	e := &Error{
		Class:      classForStatus(resp.StatusCode, hasRetryAfter),
		Op:         op,
		StatusCode: resp.StatusCode,
		RetryAfter: retryAfter,
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if r, err := DecodeResponse(body); err == nil {
		e.Message = c.redact(strings.Join(r.ErrorDetails, "; "))
		e.TraceID = r.TraceID
		if e.Message == "" && r.AuthenticationResultCode != "" && e.Class == ErrUnauthorized {
			e.Message = r.AuthenticationResultCode
		}
	}
	if isDataSourceLimit(resp.StatusCode, e.Message) {
		e.Class = ErrDataSourceLimit
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if e.Class == ErrUnauthorized {
		e.Message += " (a data source master key is required)"
	}
	return e
}

// redactedError carries a cause whose text has had the key removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// idleBody fails a body on which no byte arrives for the idle timeout, or
// that has not ended by stop (when not zero): it cancels the request, and
// reports that as ErrUnavailable rather than as a cancellation. Without it
// a stalled or trickling answer would hold a function until its deadline.
type idleBody struct {
	rc        io.ReadCloser
	idle      time.Duration
	stop      time.Time
	timer     *time.Timer
	cancel    context.CancelFunc
	stalled   atomic.Bool
	op, where string
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, stop time.Time, cancel context.CancelFunc, op, where string) *idleBody {
	b := &idleBody{rc: rc, idle: idle, stop: stop, cancel: cancel, op: op, where: where}
	b.timer = time.AfterFunc(b.next(), func() {
		b.stalled.Store(true)
		cancel()
	})
	return b
}

// next is how long the body may now stay silent.
func (b *idleBody) next() time.Duration {
	if b.stop.IsZero() {
		return b.idle
	}
	return min(b.idle, time.Until(b.stop))
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && !b.stalled.Load() {
		b.timer.Reset(b.next())
	}
	if err != nil && err != io.EOF && b.stalled.Load() {
		msg := fmt.Sprintf("%s: no data for %s", b.where, b.idle)
		if !b.stop.IsZero() && !time.Now().Before(b.stop) {
			msg = fmt.Sprintf("%s: the answer did not end in the time left before the deadline", b.where)
		}
		err = &Error{Class: ErrUnavailable, Op: b.op, Message: msg}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}

// StripLink returns a link the service returned without anything that must
// not be stored: key, output format, user info and fragment. It returns ""
// for a string that is not an absolute URL.
func StripLink(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "key") || strings.EqualFold(k, "o") || strings.EqualFold(k, "output") {
			delete(q, k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
