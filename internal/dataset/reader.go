package dataset

import (
	"fmt"
	"io"
)

// Summary describes a verified export.
type Summary struct {
	Schema   *Schema
	Entities int64
	Bytes    int64
}

// Verifier checks an export written to it and counts its entities; it
// keeps no more than the names of the open elements. Write fails as soon
// as the bytes cannot be a DataSet; Close tells whether they ended as one.
type Verifier struct {
	sc   scanner
	each func(*Record) // OnEntity's
}

// NewVerifier returns a Verifier for an export of the named data source
// (compared without regard to case); "" accepts any name.
func NewVerifier(dataSetName string) *Verifier {
	return &Verifier{sc: scanner{expect: dataSetName, col: -1}}
}

// OnEntity makes the Verifier read each entity's values and hand the
// record to f as the entity completes, in the same pass; the record is
// valid until f returns. A field that is no column of the schema, or given
// twice, is then reported by Record.Err rather than failing the export.
// Call it before the first Write.
func (v *Verifier) OnEntity(f func(*Record)) {
	v.each = f
	v.sc.records, v.sc.recordErrs = true, true
}

// Root returns the name of the export's root element, once it has been read.
func (v *Verifier) Root() string { return v.sc.root }

// Write checks the next bytes of the export.
func (v *Verifier) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n, err := v.sc.feed(p)
		if err != nil {
			return 0, err
		}
		total += n
		p = p[n:]
		if v.sc.ready {
			v.sc.ready = false
			v.each(&v.sc.rec)
		}
	}
	return total, nil
}

// Close reports whether the export ended as a complete DataSet.
func (v *Verifier) Close() error { return v.sc.end() }

// Summary returns what has been verified so far: the schema (nil before
// it), the entities counted and the bytes written.
func (v *Verifier) Summary() Summary {
	return Summary{Schema: v.sc.schema, Entities: v.sc.entities, Bytes: v.sc.off}
}

// Verify reads an export to its end and verifies it; see Verifier.
func Verify(r io.Reader, dataSetName string) (Summary, error) {
	v := NewVerifier(dataSetName)
	if _, err := io.CopyBuffer(v, r, make([]byte, readBuf)); err != nil {
		return v.Summary(), fmt.Errorf("export: %w", err)
	}
	return v.Summary(), v.Close()
}

const readBuf = 64 << 10

// Reader yields the entities of an export as typed records, verifying the
// export as a Verifier does. Memory holds one entity, whatever the size of
// the export.
type Reader struct {
	src      io.Reader
	sc       scanner
	buf      []byte
	pos, end int
	eof      bool
}

// NewReader returns a Reader of the export r of the named data source;
// "" accepts any name.
func NewReader(r io.Reader, dataSetName string, opts ...ReaderOption) *Reader {
	rd := &Reader{src: r, sc: scanner{expect: dataSetName, records: true, col: -1}, buf: make([]byte, readBuf)}
	for _, o := range opts {
		o(&rd.sc)
	}
	return rd
}

// ReaderOption relaxes a Reader for a document that is on its way into
// SDS rather than out of it: a load, which SDS reads more leniently than
// it writes an export.
type ReaderOption func(*scanner)

// FoldNames matches field elements, the key and duplicate columns
// without regard to case, as a load does.
func FoldNames() ReaderOption { return func(c *scanner) { c.fold = true } }

// RecordErrors makes a field that is not a column of the schema, a field
// given twice or a field holding elements a fault of its entity, reported
// by Record.Err, instead of an error that ends the document. The field is
// left out of the record.
func RecordErrors() ReaderOption { return func(c *scanner) { c.recordErrs = true } }

// Schema reads up to the end of the export's schema and returns it.
func (r *Reader) Schema() (*Schema, error) {
	for r.sc.phase != schemaDone {
		if err := r.step(); err != nil {
			if err == io.EOF {
				err = r.sc.end()
			}
			return nil, err
		}
	}
	return r.sc.schema, nil
}

// Next returns the next entity. After the last one it returns io.EOF,
// and only if the export ended as a complete DataSet; any other error
// means the export is not one.
func (r *Reader) Next() (*Record, error) {
	for !r.sc.ready {
		if err := r.step(); err != nil {
			return nil, err
		}
	}
	r.sc.ready = false
	return &r.sc.rec, nil
}

// step scans buffered bytes, or reads more. It returns io.EOF once the
// export has ended complete.
func (r *Reader) step() error {
	if r.pos < r.end {
		n, err := r.sc.feed(r.buf[r.pos:r.end])
		r.pos += n
		return err
	}
	if r.eof {
		if err := r.sc.end(); err != nil {
			return err
		}
		return io.EOF
	}
	n, err := r.src.Read(r.buf)
	r.pos, r.end = 0, n
	switch {
	case err == io.EOF:
		r.eof = true
	case err != nil:
		return fmt.Errorf("reading export after %d bytes: %w", r.sc.off, err)
	}
	return nil
}

// Root returns the name of the export's root element, once it has been read.
func (r *Reader) Root() string { return r.sc.root }

// Entities returns the entities read so far.
func (r *Reader) Entities() int64 { return r.sc.entities }

// Offset returns the bytes of the export scanned so far.
func (r *Reader) Offset() int64 { return r.sc.off }
