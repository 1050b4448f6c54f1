package sds

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sdsops/sdsops/internal/loadrules"
)

// Documented upload limits (package loadrules): uncompressed UTF-8 data
// and entities per data source.
const (
	MaxLoadBytes    = loadrules.MaxBytes
	MaxLoadEntities = loadrules.MaxEntities
)

// LoadOperation is the loadOperation of a Load Data Source job. Only the
// two that replace a data source's whole content are supported.
type LoadOperation string

// Load operations.
const (
	// LoadComplete creates the data source or publishes a new version of it.
	LoadComplete LoadOperation = "complete"
	// LoadCompleteStaging uploads a new version without publishing it.
	LoadCompleteStaging LoadOperation = "completeStaging"
)

// LoadRequest describes one upload. The body is streamed, so its size and
// entity count cannot be measured before it is sent: the caller declares
// them (from a verified archive manifest) and the client refuses the upload
// up front when they exceed the documented limits, then aborts the request
// if the stream turns out longer than declared or is not valid UTF-8.
type LoadRequest struct {
	Name      string        // target data source name
	Operation LoadOperation // LoadComplete or LoadCompleteStaging
	Public    bool          // setPublic=1; not allowed when staging
	// Body is the uncompressed XML DataSet (an export is valid load input).
	Body io.Reader
	// Size is Body's exact length in bytes; Entities its entity count.
	Size     int64
	Entities int64
}

func (r LoadRequest) validate() error {
	if r.Body == nil {
		return &Error{Class: ErrInvalidInput, Message: "no data to load"}
	}
	return r.Check()
}

// Check reports, as an ErrInvalidInput error, why the load r describes
// would be refused before anything is sent (name, operation, declared size
// and entity count against the documented limits); Body is not looked at.
// Load checks the same, so a caller can check before it spends anything.
func (r LoadRequest) Check() error {
	if err := ValidateName(r.Name); err != nil {
		return err
	}
	switch r.Operation {
	case LoadComplete:
	case LoadCompleteStaging:
		if r.Public {
			return &Error{Class: ErrInvalidInput, Message: "a staged data source cannot be made public (setPublic is not valid with completeStaging)"}
		}
	default:
		return &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("loadOperation %q: want complete or completeStaging", truncate(string(r.Operation), 40))}
	}
	switch {
	case r.Size <= 0:
		return &Error{Class: ErrInvalidInput, Message: "declared size must be positive"}
	case r.Size > MaxLoadBytes:
		return &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("data is %d bytes uncompressed, the limit is %d", r.Size, MaxLoadBytes)}
	case r.Entities < 0:
		return &Error{Class: ErrInvalidInput, Message: "declared entity count is negative"}
	case r.Entities > MaxLoadEntities:
		return &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("data has %d entities, the limit is %d", r.Entities, MaxLoadEntities)}
	}
	return nil
}

// Load starts a Load Data Source job: POST /Dataflows/LoadDataSource with
// the body gzip-compressed as application/octet-stream, streamed (memory
// does not grow with the data). The returned job is Pending and carries its
// status URL (the self link, or the Location header when the body has no
// self link).
//
// A load is not idempotent, and its body is consumed as it is sent: it is
// repeated only when no connection could be made. Any other failure,
// including 429 and 5xx, is returned; the caller may start over with a new
// Body after checking the job list.
func (c *Client) Load(ctx context.Context, lr LoadRequest) (*Job, error) {
	const op = "load data source"
	if err := lr.validate(); err != nil {
		return nil, withOp(err, op)
	}
	br := bufio.NewReaderSize(lr.Body, 4096)
	if err := checkEncoding(br); err != nil {
		return nil, withOp(err, op)
	}
	u := c.endpoint("Dataflows", "LoadDataSource")
	q := url.Values{}
	q.Set("dataSourceName", lr.Name)
	q.Set("loadOperation", string(lr.Operation))
	q.Set("input", "xml")
	if lr.Public {
		q.Set("setPublic", "1")
	} else {
		q.Set("setPublic", "0")
	}
	u.RawQuery = q.Encode()

	src := &uploadSource{r: br, want: lr.Size, redact: c.redact}
	// Only a connection never made leaves the body unread and the service
	// untouched.
	mayRepeat := func(err error) bool {
		var e *Error
		return errors.As(err, &e) && isDialError(e.Err) && !src.started()
	}
	var job *Job
	err := c.withRetries(ctx, op, mayRepeat, func() error {
		j, err := c.upload(ctx, op, u, src)
		job = j
		return err
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// checkEncoding refuses data that announces itself as other than UTF-8
// (a UTF-16 byte order mark or an XML declaration naming another encoding)
// before anything is sent. Invalid bytes further on abort the upload.
func checkEncoding(br *bufio.Reader) error {
	head, _ := br.Peek(512)
	if bytes.HasPrefix(head, []byte{0xfe, 0xff}) || bytes.HasPrefix(head, []byte{0xff, 0xfe}) {
		return &Error{Class: ErrInvalidInput, Message: "data is UTF-16: SDS accepts only UTF-8"}
	}
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if !bytes.HasPrefix(head, []byte("<?xml")) {
		return nil
	}
	decl, _, ok := bytes.Cut(head, []byte("?>"))
	if !ok {
		return nil
	}
	_, rest, ok := bytes.Cut(decl, []byte("encoding"))
	if !ok {
		return nil
	}
	rest = bytes.TrimLeft(rest, " \t\r\n=")
	if len(rest) == 0 {
		return nil
	}
	quote := rest[0]
	enc, _, _ := bytes.Cut(rest[1:], []byte{quote})
	if e := strings.ToLower(string(enc)); e != "utf-8" && e != "utf8" {
		return &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("data declares encoding %q: SDS accepts only UTF-8", truncate(string(enc), 20))}
	}
	return nil
}

// uploadSource hands the body out once: the first read of any attempt's
// request body starts consuming it, after which no attempt can repeat it.
type uploadSource struct {
	r      io.Reader
	want   int64
	redact func(string) string

	mu   sync.Mutex
	used bool
}

func (s *uploadSource) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

func (s *uploadSource) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used {
		return false
	}
	s.used = true
	return true
}

// lazyBody is one attempt's request body. Until the transport reads from
// it nothing is compressed and nothing of the source is consumed, so a
// failed dial leaves the source intact for another attempt.
type lazyBody struct {
	src   *uploadSource
	op    string
	onEOF func() // the whole body has been handed to the transport

	once sync.Once
	pr   *io.PipeReader // nil when closed before the first read

	mu  sync.Mutex
	err error // why the body could not be produced
}

func (b *lazyBody) start() {
	if !b.src.take() {
		b.setErr(&Error{Class: ErrInvalidInput, Op: b.op, Message: "the data stream was already sent by an earlier attempt"})
		return
	}
	pr, pw := io.Pipe()
	b.pr = pr
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed) // level is valid
		err := copyChecked(zw, b.src.r, b.src.want, b.op, b.src.redact)
		if err == nil {
			err = zw.Close()
		} else {
			b.setErr(err)
		}
		pw.CloseWithError(err)
	}()
}

func (b *lazyBody) setErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

func (b *lazyBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *lazyBody) Read(p []byte) (int, error) {
	b.once.Do(b.start)
	if b.pr == nil {
		if err := b.failure(); err != nil {
			return 0, err
		}
		return 0, io.ErrClosedPipe
	}
	n, err := b.pr.Read(p)
	if err == io.EOF && b.onEOF != nil {
		b.onEOF()
		b.onEOF = nil
	}
	return n, err
}

// Close stops the producer if it runs; a body closed before its first read
// leaves the source unconsumed.
func (b *lazyBody) Close() error {
	b.once.Do(func() {})
	if b.pr != nil {
		b.pr.CloseWithError(errors.New("upload closed"))
	}
	return nil
}

// copyChecked copies exactly want bytes of valid UTF-8 from r to w, and
// fails as soon as the data runs longer, ends shorter, or is not UTF-8.
func copyChecked(w io.Writer, r io.Reader, want int64, op string, redact func(string) string) error {
	buf := make([]byte, 64<<10)
	var n int64
	var carry int // bytes of an incomplete rune kept at buf's start
	for {
		m, rerr := r.Read(buf[carry:])
		if m > 0 {
			if n+int64(m) > want {
				return &Error{Class: ErrInvalidInput, Op: op, Message: fmt.Sprintf("data is longer than the declared %d bytes", want)}
			}
			n += int64(m)
			chunk := buf[:carry+m]
			valid, bad := validUTF8Prefix(chunk)
			if bad {
				return &Error{Class: ErrInvalidInput, Op: op, Message: fmt.Sprintf("data is not valid UTF-8 near byte %d", n-int64(len(chunk)-valid))}
			}
			if _, err := w.Write(chunk[:valid]); err != nil {
				return err
			}
			carry = copy(buf, chunk[valid:])
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return &Error{Class: ErrUnavailable, Op: op, Message: fmt.Sprintf("reading the data after %d bytes", n), Err: &redactedError{msg: redact(rerr.Error()), err: rerr}}
		}
	}
	switch {
	case carry > 0:
		return &Error{Class: ErrInvalidInput, Op: op, Message: "data ends inside a UTF-8 sequence"}
	case n != want:
		return &Error{Class: ErrInvalidInput, Op: op, Message: fmt.Sprintf("data ended after %d of the declared %d bytes", n, want)}
	}
	return nil
}

// validUTF8Prefix returns the length of the longest prefix of p made of
// complete, valid UTF-8 sequences; bad reports an invalid sequence (as
// opposed to one merely cut short at the end of p).
func validUTF8Prefix(p []byte) (n int, bad bool) {
	for n < len(p) {
		if p[n] < utf8.RuneSelf {
			n++
			continue
		}
		r, size := utf8.DecodeRune(p[n:])
		if r == utf8.RuneError && size <= 1 {
			return n, utf8.FullRune(p[n:])
		}
		n += size
	}
	return n, false
}

// upload sends one attempt. The attempt's timeout runs from the moment
// the whole body has been handed over, since a large upload takes longer
// than any fixed wait for the answer.
func (c *Client) upload(ctx context.Context, op string, u *url.URL, src *uploadSource) (*Job, error) {
	full := *u
	q := full.Query()
	if c.xml {
		q.Set("o", "xml")
	} else {
		q.Set("o", "json")
	}
	q.Set("key", c.key)
	full.RawQuery = q.Encode()
	where := http.MethodPost + " " + u.Redacted()

	if wait, _ := c.budget(ctx); wait <= 0 {
		return nil, c.noTimeLeft(op, where)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var wait time.Duration
	var timer *time.Timer
	expired := false
	body := &lazyBody{src: src, op: op}
	body.onEOF = func() {
		mu.Lock()
		defer mu.Unlock()
		wait, _ = c.budget(ctx)
		timer = time.AfterFunc(max(wait, 0), func() {
			mu.Lock()
			expired = true
			mu.Unlock()
			cancel()
		})
	}
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, full.String(), body)
	if err != nil {
		return nil, &Error{Class: ErrInvalidInput, Op: op, Message: "cannot build request for " + where}
	}
	hreq.ContentLength = -1
	hreq.Header.Set("Content-Type", "application/octet-stream")
	hreq.Header.Set("Accept", "application/json, application/xml;q=0.9, */*;q=0.5")
	resp, err := c.hc.Do(hreq)
	mu.Lock()
	if timer != nil {
		timer.Stop()
	}
	late, waited := expired, wait
	mu.Unlock()
	if err != nil {
		// A failure of the body itself (limits, UTF-8, reading the source)
		// is the real cause; the transport only reports it second hand.
		if berr := body.failure(); berr != nil {
			return nil, berr
		}
		return nil, c.transportError(ctx, op, where, err, !late, waited)
	}
	_, stop := c.budget(ctx)
	resp.Body = newIdleBody(resp.Body, c.timeout, stop, cancel, op, where)
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(op, resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &Error{Class: ErrUnavailable, Op: op, Message: "reading the response (the job may have been created: check the job list)", Err: &redactedError{msg: c.redact(err.Error()), err: err}}
	}
	r, err := DecodeResponse(raw)
	if err != nil {
		return nil, withOp(err, op)
	}
	c.sanitize(r)
	if len(r.Jobs) == 0 || r.Jobs[0].ID == "" {
		return nil, &Error{Class: ErrDecode, Op: op, Message: "the response holds no job with an id", TraceID: r.TraceID}
	}
	job := r.Jobs[0]
	if err := c.withStatusLink(op, &job, u, resp.Header, true); err != nil {
		return nil, err
	}
	return &job, nil
}

// JobStatus reads the status of a load, publish or rollback job from its
// status URL (the job's self link, without a key). Any status is returned
// without error; Job.Err reports an aborted job.
func (c *Client) JobStatus(ctx context.Context, statusURL string) (*Job, error) {
	const op = "job status"
	u, err := c.link(op, statusURL)
	if err != nil {
		return nil, err
	}
	return c.jobCall(ctx, request{op: op, method: http.MethodGet, u: u, safe: true, format: true})
}

// DataSourceURL is the link a completed load, publish or rollback job
// gives to the data source (role datasource), without a key; empty when
// the job has none.
func (j *Job) DataSourceURL() string {
	l, _ := j.Link("datasource", "")
	return l.URL
}

// FailedURL is the link to an aborted job's error log (role output, name
// failed); empty when the job has none.
func (j *Job) FailedURL() string {
	l, _ := j.Link("output", "failed")
	return l.URL
}

// LoadedDataSource returns the data source a completed job names in its
// datasource link. A data source created again after a delete may have a
// new accessId, so callers should take it from here rather than reuse an
// old one.
func (j *Job) LoadedDataSource() (DataSource, error) {
	const op = "loaded data source"
	raw := j.DataSourceURL()
	if raw == "" {
		return DataSource{}, &Error{Class: ErrDecode, Op: op, Message: fmt.Sprintf("job %s (%s) has no datasource link", j.ID, j.Status)}
	}
	return ParseDataSourceURL(raw)
}

// ParseDataSourceURL reads accessId and name from a data source URL
// (…/REST/v1/data/{accessId}/{name}). Empty path segments are skipped: one
// documented response doubles a slash.
func ParseDataSourceURL(raw string) (DataSource, error) {
	const op = "loaded data source"
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return DataSource{}, &Error{Class: ErrDecode, Op: op, Message: "the data source link is not an absolute URL"}
	}
	var segs []string
	for s := range strings.SplitSeq(u.EscapedPath(), "/") {
		if s == "" {
			continue
		}
		seg, err := url.PathUnescape(s)
		if err != nil {
			return DataSource{}, &Error{Class: ErrDecode, Op: op, Message: "the data source link has a malformed path"}
		}
		segs = append(segs, seg)
	}
	for i := 0; i+4 < len(segs); i++ {
		if strings.EqualFold(segs[i], "REST") && strings.EqualFold(segs[i+1], "v1") && strings.EqualFold(segs[i+2], "data") {
			ds := DataSource{AccessID: segs[i+3], Name: segs[i+4]}
			if err := ds.Validate(); err != nil {
				return DataSource{}, withOp(err, op)
			}
			return ds, nil
		}
	}
	return DataSource{}, &Error{Class: ErrDecode, Op: op, Message: fmt.Sprintf("%q is not a …/REST/v1/data/{accessId}/{name} URL", truncate(u.Path, 120))}
}

// OpenFailedOutput opens an aborted job's error log (its failed output
// link) as a stream, so it can be kept for the user. The caller closes it.
// Like every text of the service, the log has the key removed; its
// ContentLength is therefore unknown (-1).
func (c *Client) OpenFailedOutput(ctx context.Context, job *Job) (*Export, error) {
	const op = "failed output"
	link := job.FailedURL()
	if link == "" {
		return nil, &Error{Class: ErrNotFound, Op: op, Message: fmt.Sprintf("job %s (%s) has no failed output link", job.ID, job.Status)}
	}
	u, err := c.link(op, link)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, u: u, safe: true})
	if err != nil {
		return nil, err
	}
	raw := &checkedBody{r: resp.Body, want: resp.ContentLength, redact: c.redact}
	return &Export{
		Body:          readCloser{Reader: c.redactStream(raw), Closer: raw},
		ContentLength: -1,
		ContentType:   resp.Header.Get("Content-Type"),
	}, nil
}

// PublishStaged starts a DataSourcePublishFromStaged job that publishes
// ds's staged version. Follow it with JobStatus on its status URL
// (…/data/jobs/{id}/$getstatus).
func (c *Client) PublishStaged(ctx context.Context, ds DataSource) (*Job, error) {
	const op = "publish staged"
	if err := ds.Validate(); err != nil {
		return nil, withOp(err, op)
	}
	// Not repeated after a lost answer: a second publish would find
	// nothing staged, or publish a newer staged version.
	return c.jobCall(ctx, request{op: op, method: http.MethodGet, u: c.endpoint("data", ds.AccessID, ds.Name, "$commit"), format: true,
		newJob: true, statusTemplate: []string{"data", "jobs", "{id}", "$getstatus"}})
}

// Rollback starts a DataSourceRollback job that makes the prior version
// whose job id is versionJobID (see DataSourceInfo with all versions) the
// published one again. Follow it with JobStatus on its status URL.
func (c *Client) Rollback(ctx context.Context, name, versionJobID string) (*Job, error) {
	const op = "rollback"
	if err := ValidateName(name); err != nil {
		return nil, withOp(err, op)
	}
	if err := ValidateJobID(versionJobID); err != nil {
		return nil, withOp(err, op)
	}
	return c.jobCall(ctx, request{op: op, method: http.MethodGet, u: c.endpoint("Dataflows", "DataSourceRollback", versionJobID, name), format: true,
		newJob: true, statusTemplate: []string{"Dataflows", "DataSourceRollback", "{id}"}})
}
