package sdsemu

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// downloadData: GET {self}/output/succeeded streams the data set of a completed job;
// {self}/output/failed serves the error log of an aborted one as plain text (the docs do not
// show its format).
func (s *Server) downloadData(q *request) {
	var snap Job
	var ds Dataset
	e := func() *apiError {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advanceLocked(s.cfg.Now())
		var j *job
		var e *apiError
		if len(q.args) == 3 { // the short form names only the data source
			j, e = s.newestDownloadLocked(q.key, q.args[0])
		} else {
			j, e = s.downloadJobLocked(q.key, q.args[0], q.args[1], q.args[2])
		}
		if e != nil {
			return e
		}
		snap, ds = j.snapshot(), j.dataset
		return nil
	}()
	if e != nil {
		q.fail(e)
		return
	}

	if strings.EqualFold(q.args[len(q.args)-1], "failed") {
		if snap.Status != StatusAborted {
			q.fail(newError(http.StatusBadRequest, fmt.Sprintf("The download job has not aborted (status %s): there is no error log.", snap.Status)))
			return
		}
		body := snap.ErrorMessage + "\n"
		q.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		q.w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(q.w, body)
		return
	}

	switch snap.Status {
	case StatusPending:
		q.fail(newError(http.StatusBadRequest, "The download job is still Pending: poll its status URL until it is Completed."))
		return
	case StatusAborted:
		q.fail(newError(http.StatusBadRequest, "The download job was Aborted: it has no data to download."))
		return
	}
	size := s.datasetSize(ds)
	f := s.takeBodyFault(q.r.URL.Path)
	if f == nil && s.cfg.DownloadEncoding != "" {
		f = &Fault{Kind: FaultKind(s.cfg.DownloadEncoding)}
	}
	if f == nil {
		q.w.Header().Set("Content-Type", contentXML)
		q.w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		q.w.WriteHeader(http.StatusOK)
		_, _ = ds.WriteTo(q.w) // a failed write means the client went away
		return
	}
	q.rec.addFault(f.Kind)
	switch f.Kind {
	case FaultTruncate:
		// The server cannot reuse a connection whose body fell short of its Content-Length,
		// so it closes it after the handler returns.
		q.w.Header().Set("Content-Type", contentXML)
		q.w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		q.w.WriteHeader(http.StatusOK)
		_, _ = ds.WriteTo(&limitWriter{w: q.w, left: min(f.Bytes, size)})
		_ = http.NewResponseController(q.w).Flush()
	case FaultReset:
		s.rawDownload(q, ds, size, min(f.Bytes, size), true)
	case FaultOverlong:
		s.rawDownload(q, ds, min(f.Bytes, size), size, false)
	case FaultStall:
		var b bytes.Buffer
		_, _ = ds.WriteTo(&b)
		stall(q, contentXML, b.Bytes(), f)
	case FaultZip:
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create(ds.Name + ".xml")
		_, _ = ds.WriteTo(w)
		_ = zw.Close()
		q.w.Header().Set("Content-Type", "application/zip")
		q.w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		q.w.WriteHeader(http.StatusOK)
		_, _ = q.w.Write(b.Bytes())
	case FaultGzip:
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = ds.WriteTo(zw)
		_ = zw.Close()
		q.w.Header().Set("Content-Type", contentXML)
		q.w.Header().Set("Content-Encoding", "gzip")
		q.w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		q.w.WriteHeader(http.StatusOK)
		_, _ = q.w.Write(b.Bytes())
	}
}

// stall announces body in full, sends f.Bytes of it and then nothing for f.Latency (or until
// the client goes away), and leaves the body short.
func stall(q *request, contentType string, body []byte, f *Fault) {
	q.w.Header().Set("Content-Type", contentType)
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(body[:min(int(f.Bytes), len(body))])
	_ = http.NewResponseController(q.w).Flush()
	wait := f.Latency
	if wait <= 0 {
		wait = maxStall
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-q.r.Context().Done():
	case <-t.C:
	}
}

// rawDownload takes the connection over to send what net/http refuses to: a Content-Length
// that does not match the body, or a connection reset after some bytes.
func (s *Server) rawDownload(q *request, ds Dataset, announced, send int64, reset bool) {
	conn, rw, err := http.NewResponseController(q.w).Hijack()
	if err != nil {
		q.fail(newError(http.StatusInternalServerError, "The connection cannot be taken over for this fault."))
		return
	}
	q.w.status = http.StatusOK
	defer conn.Close()
	// Connection: close keeps the client from reading the surplus as the next response.
	_, _ = fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\nConnection: close\r\n\r\n",
		contentXML, announced, time.Now().UTC().Format(http.TimeFormat))
	_, _ = ds.WriteTo(&limitWriter{w: rw, left: send})
	_ = rw.Flush()
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0) // Close now sends RST instead of FIN
	}
}

var errLimit = errors.New("write limit reached")

// limitWriter passes on at most left bytes, then fails.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= int64(n)
		if err == nil {
			err = errLimit
		}
		return n, err
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
