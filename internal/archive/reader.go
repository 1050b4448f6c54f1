package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/loadrules"
)

// exportReader is what the uploader reads: the export as it streams, hashed,
// counted and checked on the way. It returns io.EOF only once the export
// has arrived complete; any failure is returned as a read error instead,
// which makes the uploader abort, so a bad export never becomes an object.
type exportReader struct {
	src      io.Reader
	want     int64 // the announced length; -1 when unknown
	corrupt  func(error) bool
	req      Request
	n        int64
	h        hash.Hash
	check    *dataset.Verifier // lenient: flaws become problems, not failures
	err      error             // sticky: the first failure, already classified
	eof      bool
	problems []string // verification's findings, once complete
	// restore checks every entity against the load's rules in the same
	// pass; restoreProblems are its findings, once complete.
	restore         *loadrules.ExportCheck
	restoreProblems []string
}

func newExportReader(exp Export, req Request) *exportReader {
	r := &exportReader{src: exp.Body, want: exp.Length, corrupt: exp.Corrupt, req: req, h: sha256.New()}
	r.check, r.restore = newChecks(req.DataSourceName, req.ExpectedEntities)
	return r
}

// newChecks returns the checks of one pass over an export of the named
// data source, of about entities entities: the lenient Verifier, which
// hands each entity to the load rules' check.
func newChecks(dataSourceName string, entities int64) (*dataset.Verifier, *loadrules.ExportCheck) {
	v, c := dataset.NewLenientVerifier(dataSourceName), loadrules.NewExportCheck(entities)
	v.OnEntity(func(rec *dataset.Record) { c.Entity(rec, v.Root()) })
	return v, c
}

func (r *exportReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.eof {
		return 0, io.EOF
	}
	n, err := r.src.Read(p)
	if n > 0 {
		r.n += int64(n)
		if r.want >= 0 && r.n > r.want {
			return 0, r.fail(ErrIntegrity, fmt.Errorf("export is longer than its announced length of %d bytes", r.want))
		}
		r.h.Write(p[:n])
		if _, cerr := r.check.Write(p[:n]); cerr != nil {
			return 0, r.fail(ErrIntegrity, cerr)
		}
	}
	switch {
	case err == io.EOF:
		if ferr := r.finish(); ferr != nil {
			return 0, ferr
		}
		r.eof = true
		return n, io.EOF
	case err != nil:
		if r.corrupt != nil && r.corrupt(err) {
			return 0, r.fail(ErrIntegrity, err) // a corrupt gzip or ZIP packing
		}
		return 0, r.fail(ErrSource, fmt.Errorf("reading the export after %d bytes: %w", r.n, err))
	}
	return n, nil
}

// finish decides, at the end of the stream, whether the export arrived
// complete (its length as announced, well-formed to the end: else it is
// not stored) and collects verification's findings on one that did.
func (r *exportReader) finish() error {
	if r.want >= 0 && r.n != r.want {
		return r.fail(ErrIntegrity, fmt.Errorf("export ended after %d of %d bytes", r.n, r.want))
	}
	if err := r.check.Close(); err != nil {
		return r.fail(ErrIntegrity, err)
	}
	r.problems = r.check.Problems(r.req.ExpectedEntities)
	s := r.check.Summary()
	r.restoreProblems = r.restore.Problems(s.Schema, r.check.Root(), s.Bytes, s.Entities)
	return nil
}

func (r *exportReader) fail(class, err error) error {
	r.err = classed(class, "export stream", err)
	return r.err
}

// failure returns the stream's own error, if it failed.
func (r *exportReader) failure() error { return r.err }

type streamSummary struct {
	bytes, entities      int64
	sha256               string
	entityType, schemaID string
	problems             []string
	restoreProblems      []string
}

// summary describes a stream that has been read to a successful io.EOF.
// An upload that reports success without having seen that end must not
// pass unnoticed.
func (r *exportReader) summary() (streamSummary, error) {
	if !r.eof {
		return streamSummary{}, errors.New("the upload finished before the export stream ended")
	}
	s := r.check.Summary()
	return streamSummary{bytes: r.n, entities: s.Entities, sha256: hex.EncodeToString(r.h.Sum(nil)),
		entityType: s.Schema.EntityType, schemaID: s.Schema.DataSetName, problems: r.problems,
		restoreProblems: r.restoreProblems}, nil
}
