package sds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// CreateDownloadJob starts a DataSourceDownload job for the published
// version of ds, or for the version whose job id is jobID when not empty.
// The returned job is Pending and carries its status URL (self link).
func (c *Client) CreateDownloadJob(ctx context.Context, ds DataSource, jobID string) (*Job, error) {
	const op = "create download job"
	if err := ds.Validate(); err != nil {
		return nil, withOp(err, op)
	}
	u := c.endpoint("Dataflows", "DataSourceDownload", ds.AccessID, ds.Name)
	if jobID != "" {
		if err := ValidateJobID(jobID); err != nil {
			return nil, withOp(err, op)
		}
		u.RawQuery = "jobId=" + jobID
	}
	return c.jobCall(ctx, request{op: op, method: http.MethodGet, u: u, format: true, newJob: true})
}

// DownloadJobStatus reads a download job's status from its status URL (the
// job's self link, without a key). Any status is returned without error;
// Job.Err reports an aborted job.
func (c *Client) DownloadJobStatus(ctx context.Context, statusURL string) (*Job, error) {
	const op = "download job status"
	u, err := c.link(op, statusURL)
	if err != nil {
		return nil, err
	}
	return c.jobCall(ctx, request{op: op, method: http.MethodGet, u: u, safe: true, format: true})
}

// StatusURLFor builds a status URL from the job's identifiers, for callers
// that kept only those. The documented self link carries neither accessId
// nor job id; this is the exact form (…/DataSourceDownload/{accessId}/
// {name}/{jobId}) our emulator serves. Prefer the self link the service
// returned.
func (c *Client) StatusURLFor(ds DataSource, jobID string) (string, error) {
	if err := ds.Validate(); err != nil {
		return "", err
	}
	if err := ValidateJobID(jobID); err != nil {
		return "", err
	}
	return c.endpoint("dataflows", "DataSourceDownload", ds.AccessID, ds.Name, jobID).String(), nil
}

// Export is the body of a completed download job: the XML DataSet. The
// caller must close Body. Reading it returns an ErrUnavailable error, not
// io.EOF, when the body ends short of its Content-Length, the connection
// breaks or no byte arrives for the client's timeout: a truncated export
// never looks complete. A gzip or ZIP delivery is unpacked: Body yields the
// XML inside, and a packing that is corrupt reads as an ErrDecode error.
type Export struct {
	Body          io.ReadCloser
	ContentLength int64 // of the XML; -1 when unknown
	ContentType   string
	// Delivery describes what was received when it was packed (nil for
	// plain XML); its counts are complete once Body has returned io.EOF.
	Delivery *Delivery
}

// OpenExport opens the output of a completed download job as a stream.
func (c *Client) OpenExport(ctx context.Context, job *Job) (*Export, error) {
	const op = "download data"
	if err := job.Err(); err != nil {
		return nil, err
	}
	if job.Status != StatusCompleted {
		return nil, &Error{Class: ErrBadRequest, Op: op, Message: fmt.Sprintf("job %s is %s, not Completed", job.ID, job.Status)}
	}
	link := job.DownloadURL()
	if link == "" {
		return nil, &Error{Class: ErrDecode, Op: op, Message: fmt.Sprintf("completed job %s has no output link", job.ID)}
	}
	return c.OpenExportURL(ctx, link)
}

// CheckExportURL returns the error OpenExportURL would refuse downloadURL
// with, without connecting: a link to another host, another scheme or
// outside the API is refused before anything else is done with it.
func (c *Client) CheckExportURL(downloadURL string) error {
	_, err := c.link("download data", downloadURL)
	return err
}

// OpenExportURL opens a download URL (the output link, without a key).
func (c *Client) OpenExportURL(ctx context.Context, downloadURL string) (*Export, error) {
	const op = "download data"
	u, err := c.link(op, downloadURL)
	if err != nil {
		return nil, err
	}
	// gzip is asked for explicitly, so that the transport leaves it to us:
	// the received bytes are then counted against Content-Length and hashed.
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, u: u, safe: true, gzip: true})
	if err != nil {
		return nil, err
	}
	raw := &checkedBody{r: resp.Body, want: resp.ContentLength, redact: c.redact}
	xmlBody, d, err := unpackExport(raw, resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"))
	if err != nil {
		raw.Close()
		return nil, err
	}
	exp := &Export{
		Body:          readCloser{Reader: xmlBody, Closer: raw},
		ContentLength: resp.ContentLength,
		ContentType:   resp.Header.Get("Content-Type"),
		Delivery:      d,
	}
	if d != nil {
		exp.ContentLength = -1
	}
	return exp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// DeleteDataSource deletes ds (only its staged version when staging). The
// service answers 202 and runs a DataSourceDelete job, which shows in the
// job list; the data source answers 404 once the job has completed.
func (c *Client) DeleteDataSource(ctx context.Context, ds DataSource, staging bool) error {
	const op = "delete data source"
	if err := ds.Validate(); err != nil {
		return withOp(err, op)
	}
	u := c.endpoint("data", ds.AccessID, ds.Name)
	if staging {
		u.RawQuery = "isStaging=1"
	}
	// DELETE is idempotent: repeating it after a lost answer at worst starts
	// a second delete job for the same data source, or answers 404 once the
	// first has finished.
	resp, err := c.do(ctx, request{op: op, method: http.MethodDelete, u: u, safe: true, goneIsDone: true})
	if errors.Is(err, errAlreadyDone) {
		return nil
	}
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// SetPublic makes ds public or private. The service answers with a
// DataServiceJob (status Created) whose id is the DataSourceAccess job in
// the job list.
func (c *Client) SetPublic(ctx context.Context, ds DataSource, public bool) (*Job, error) {
	const op = "set public"
	if err := ds.Validate(); err != nil {
		return nil, withOp(err, op)
	}
	u := c.endpoint("data", ds.AccessID, ds.Name, "$updateDataSource")
	u.RawQuery = "setPublic=0"
	if public {
		u.RawQuery = "setPublic=1"
	}
	// Setting the same visibility twice ends in the same state; the cost of
	// a repeat is one more (short) job against the account's limits.
	return c.jobCall(ctx, request{op: op, method: http.MethodGet, u: u, safe: true, format: true})
}

// DataSourceInfo describes ds: its published version, or with allVersions
// also its staged and up to two prior versions, each with its job id.
func (c *Client) DataSourceInfo(ctx context.Context, ds DataSource, allVersions bool) ([]DataSourceInfo, error) {
	const op = "data source information"
	if err := ds.Validate(); err != nil {
		return nil, withOp(err, op)
	}
	u := c.endpoint("data", ds.AccessID, ds.Name)
	if allVersions {
		u.RawQuery = "showAllVersions=true"
	}
	// The Atom form is asked for: unlike OData JSON it carries job ids,
	// staging flags and the query URL.
	infos, err := c.infoCall(ctx, request{op: op, method: http.MethodGet, u: u, safe: true})
	if err != nil {
		return nil, err
	}
	for i := range infos {
		if infos[i].AccessID == "" {
			infos[i].AccessID = ds.AccessID
		}
	}
	return infos, nil
}

// DataSources lists the data sources of the account the key belongs to.
func (c *Client) DataSources(ctx context.Context) ([]DataSourceInfo, error) {
	return c.infoCall(ctx, request{op: "list data sources", method: http.MethodGet, u: c.endpoint("data"), safe: true})
}

// ListJobs returns the account's jobs of the last 15 days, pending first.
// Download jobs are not listed by the service.
func (c *Client) ListJobs(ctx context.Context) ([]Job, error) {
	const op = "list jobs"
	r, err := c.envelopeCall(ctx, request{op: op, method: http.MethodGet, u: c.endpoint("Dataflows", "ListJobs"), safe: true, format: true})
	if err != nil {
		return nil, err
	}
	return r.Jobs, nil
}

// Err returns an ErrJobAborted error carrying the job's error message when
// the job was aborted, and nil otherwise.
func (j *Job) Err() error {
	if j.Status != StatusAborted {
		return nil
	}
	msg := j.ErrorMessage
	if msg == "" {
		msg = "no error message given"
	}
	return &Error{Class: ErrJobAborted, Op: "job " + j.ID, Message: msg}
}

func (c *Client) envelopeCall(ctx context.Context, req request) (*Response, error) {
	r, _, err := c.envelopeCallHeader(ctx, req)
	return r, err
}

// envelopeCallHeader returns the decoded envelope, its service strings
// redacted, and the answer's headers.
func (c *Client) envelopeCallHeader(ctx context.Context, req request) (*Response, http.Header, error) {
	body, h, err := c.readAll(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	// Decode what was asked for: an XML body to a JSON request is not
	// parsed at all.
	var r *Response
	switch fb := firstByte(body); {
	case req.format && !c.xml && fb != '{':
		err = decodeErr("JSON was asked for, the answer is not JSON", nil)
	case req.format && c.xml && fb != '<':
		err = decodeErr("XML was asked for, the answer is not XML", nil)
	default:
		r, err = DecodeResponse(body)
	}
	if err != nil {
		return nil, nil, withOp(err, req.op)
	}
	c.sanitize(r)
	return r, h, nil
}

// sanitize removes the key from every string of an answer that may be
// shown, logged or stored, and drops links that carry the key in their
// path (a key in a query string is stripped wherever a link is used).
func (c *Client) sanitize(r *Response) {
	for i := range r.ErrorDetails {
		r.ErrorDetails[i] = c.redact(r.ErrorDetails[i])
	}
	r.TraceID = c.redact(r.TraceID)
	r.StatusDescription = c.redact(r.StatusDescription)
	for i := range r.Jobs {
		j := &r.Jobs[i]
		j.ID, j.Name, j.Description, j.Type = c.redact(j.ID), c.redact(j.Name), c.redact(j.Description), c.redact(j.Type)
		j.ErrorMessage = c.redact(j.ErrorMessage)
		links := j.Links[:0]
		for _, l := range j.Links {
			if c.redact(StripLink(l.URL)) != StripLink(l.URL) {
				continue
			}
			l.Role, l.Name = c.redact(l.Role), c.redact(l.Name)
			links = append(links, l)
		}
		j.Links = links
	}
}

// Redact removes the client's key, in every encoding it could take, from
// text that came from the service, for callers that pass such text on.
func (c *Client) Redact(s string) string { return c.redact(s) }

func (c *Client) jobCall(ctx context.Context, req request) (*Job, error) {
	r, h, err := c.envelopeCallHeader(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(r.Jobs) == 0 {
		return nil, &Error{Class: ErrDecode, Op: req.op, Message: "the response holds no job", TraceID: r.TraceID}
	}
	job := r.Jobs[0]
	if job.ID == "" {
		return nil, &Error{Class: ErrDecode, Op: req.op, Message: "the job has no id", TraceID: r.TraceID}
	}
	// Microsoft's client polls the Location header and reads a failed job's
	// reason from the envelope's errorDetails: real answers may carry them
	// only there.
	if job.StatusURL() == "" && h.Get("Location") == "" && len(req.statusTemplate) > 0 {
		if err := ValidateJobID(job.ID); err != nil {
			return nil, withOp(err, req.op)
		}
		segs := make([]string, len(req.statusTemplate))
		for i, s := range req.statusTemplate {
			segs[i] = strings.ReplaceAll(s, "{id}", job.ID)
		}
		job.Links = append(job.Links, Link{Role: "self", URL: c.endpoint(segs...).String()})
	}
	if err := c.withStatusLink(req.op, &job, req.u, h, req.newJob); err != nil {
		return nil, err
	}
	if job.Status == StatusAborted && strings.TrimSpace(job.ErrorMessage) == "" && len(r.Jobs) == 1 {
		job.ErrorMessage = strings.Join(nonEmpty(r.ErrorDetails), "; ")
	}
	return &job, nil
}

// withStatusLink gives job a self link when its body has none: the
// answer's Location header (which Microsoft's own client polls), resolved
// against the request URL and checked like every link the key is sent to.
// A Location that carries the key is never kept. With need set (the answer
// to a request that started the job), a job left without a status link is
// an error that says why.
func (c *Client) withStatusLink(op string, job *Job, reqURL *url.URL, h http.Header, need bool) error {
	if job.StatusURL() != "" {
		return nil
	}
	loc := strings.TrimSpace(h.Get("Location"))
	if loc == "" {
		return needed(need, &Error{Class: ErrDecode, Op: op, Message: "the job has neither a self link nor a Location header"})
	}
	u, err := reqURL.Parse(loc)
	if err != nil {
		return needed(need, &Error{Class: ErrDecode, Op: op, Message: "the job has no self link and its Location header does not parse"})
	}
	s := StripLink(u.String())
	if c.redact(s) != s {
		return needed(need, &Error{Class: ErrDecode, Op: op, Message: "the job has no self link and its Location header carries the master key"})
	}
	if _, err := c.link(op, s); err != nil {
		return needed(need, err)
	}
	job.Links = append(job.Links, Link{Role: "self", URL: s})
	return nil
}

// needed returns err when the caller needs what failed, nil otherwise.
func needed(need bool, err error) error {
	if need {
		return err
	}
	return nil
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *Client) infoCall(ctx context.Context, req request) ([]DataSourceInfo, error) {
	body, _, err := c.readAll(ctx, req)
	if err != nil {
		return nil, err
	}
	infos, err := DecodeDataSources(body)
	if err != nil {
		return nil, withOp(err, req.op)
	}
	for i := range infos {
		in := &infos[i]
		in.Name, in.JobID, in.AccessID = c.redact(in.Name), c.redact(in.JobID), c.redact(in.AccessID)
		for k := range in.EntitySets {
			in.EntitySets[k] = c.redact(in.EntitySets[k])
		}
		if c.redact(StripLink(in.QueryURL)) != StripLink(in.QueryURL) {
			in.QueryURL = ""
		}
	}
	return infos, nil
}

// readAll sends req and reads its answer's whole body, within a size
// limit. An attempt covers both: a body cut short or stalled is repeated
// like any other failure of a safe request, within the same MaxAttempts.
func (c *Client) readAll(ctx context.Context, req request) ([]byte, http.Header, error) {
	var body []byte
	var header http.Header
	req.whole = true
	err := c.withRetries(ctx, req.op, func(err error) bool { return retryable(err, req.safe) }, func() error {
		resp, err := c.attempt(ctx, req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
		if err != nil {
			msg := "reading the response"
			if !req.safe {
				msg += " (the job may have been created: check the job list)"
			}
			return &Error{Class: ErrUnavailable, Op: req.op, Message: msg, Err: &redactedError{msg: c.redact(err.Error()), err: err}}
		}
		if len(b) > maxResponseBytes {
			return &Error{Class: ErrDecode, Op: req.op, Message: fmt.Sprintf("response larger than %d bytes", maxResponseBytes)}
		}
		body, header = b, resp.Header
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return body, header, nil
}

// withOp fills in the operation of an *Error that has none.
func withOp(err error, op string) error {
	if e, ok := err.(*Error); ok && e.Op == "" {
		copied := *e
		copied.Op = op
		return &copied
	}
	return err
}

// checkedBody turns a short or broken export stream into an error.
type checkedBody struct {
	r      io.ReadCloser
	n      int64
	want   int64
	redact func(string) string
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF && b.want >= 0 && b.n != b.want:
		return n, &Error{Class: ErrUnavailable, Op: "download data", Message: fmt.Sprintf("export ended after %d of %d bytes", b.n, b.want)}
	case err != nil && err != io.EOF:
		msg := fmt.Sprintf("export stream broke after %d bytes", b.n)
		if b.want >= 0 {
			msg = fmt.Sprintf("export stream broke after %d of %d bytes", b.n, b.want)
		}
		return n, &Error{Class: ErrUnavailable, Op: "download data", Message: msg, Err: &redactedError{msg: b.redact(err.Error()), err: err}}
	}
	return n, err
}

func (b *checkedBody) Close() error { return b.r.Close() }
