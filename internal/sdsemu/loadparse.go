package sdsemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/loadrules"
)

// MaxUploadBytes is the documented limit of uncompressed data in one upload.
const MaxUploadBytes = loadrules.MaxBytes

// loadOutcome is the result of reading an upload.
type loadOutcome struct {
	schema    *loadrules.Schema
	entities  int
	failed    int
	abort     string // non-empty: the job aborts with this message
	failedLog bool   // the failed writer received a data set of the failed entities
}

// errTooLarge stops reading an upload that exceeds MaxUploadBytes.
var errTooLarge = fmt.Errorf("the uploaded data exceeds %d bytes uncompressed", MaxUploadBytes)

// bodyError is a failure to receive or decompress the upload, as opposed to a fault in the
// data: the request fails and no job is created.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyReader marks every error but io.EOF of r as a bodyError.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// capReader fails once more than MaxUploadBytes have been read.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > MaxUploadBytes {
		return n, errTooLarge
	}
	return n, err
}

// readUpload validates an uploaded XML DataSet as it streams, writing the stored document for
// dataSourceName to out and the failed entities to failed. An error is returned only for
// errTooLarge or a broken connection; everything else the job reports.
func readUpload(r io.Reader, dataSourceName string, maxEntities int, out, failed *bufio.Writer) (loadOutcome, error) {
	var o loadOutcome
	// The load matches property names in any case, and an entity with a stray property fails
	// alone rather than the whole upload.
	rd := dataset.NewReader(&capReader{r: r}, "", dataset.FoldNames(), dataset.RecordErrors())
	abort := func(format string, args ...any) (loadOutcome, error) {
		o.abort = fmt.Sprintf(format, args...)
		return o, nil
	}
	stop := func(err error) (loadOutcome, error) {
		var be *bodyError
		if errors.Is(err, errTooLarge) || errors.As(err, &be) {
			return o, err
		}
		return abort("The data is not a valid DataSet after %d entities: %s.", o.entities, truncateText(err.Error(), 200))
	}
	ds, err := rd.Schema()
	if err != nil {
		return stop(err)
	}
	s, err := loadrules.CheckSchema(ds, rd.Root())
	if err != nil {
		return abort("Invalid schema: %s.", err.Error())
	}
	o.schema = s
	writeStoredHeader(out, dataSourceName, s)
	writeStoredHeader(failed, dataSourceName, s)
	seen := map[string]struct{}{}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return stop(err)
		}
		o.entities++
		if o.entities > maxEntities {
			return abort("The data has more than %d entities.", maxEntities)
		}
		problem := ""
		if f := s.CheckEntity(rec); f != nil {
			problem = f.Error()
		} else {
			key := rec.Value(s.Key).Text()
			if _, dup := seen[key]; dup {
				problem = fmt.Sprintf("entity ID %q is used by an earlier entity", key)
			} else {
				seen[key] = struct{}{}
			}
		}
		if problem != "" {
			o.failed++
			o.failedLog = true
			fmt.Fprintf(failed, "  <!-- entity %d: %s -->\n", o.entities, commentEscaper.Replace(problem))
			writeEntity(failed, rec)
			continue
		}
		writeEntity(out, rec)
	}
	_, _ = out.WriteString(storedFooter)
	_, _ = failed.WriteString(storedFooter)
	if o.failed > 0 {
		o.abort = fmt.Sprintf("%d of %d entities failed validation; nothing was loaded. The failed output lists them.", o.failed, o.entities)
	}
	return o, nil
}

const storedFooter = "</MainRoot>\n"

var (
	commentEscaper = strings.NewReplacer("--", "- -")
	storedText     = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	storedAttr     = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

// writeStoredHeader writes the download form of a loaded data set: the same layout as the
// generated exports, the data source named as loaded, the uploaded entity type and columns.
func writeStoredHeader(w *bufio.Writer, name string, s *loadrules.Schema) {
	n, et := storedAttr.Replace(name), storedAttr.Replace(s.EntityType)
	w.WriteString(`<?xml version="1.0" encoding="UTF-8" ?>` + "\n<MainRoot>\n")
	w.WriteString(`  <xs:schema xmlns="" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata" id="` + n + "\">\n")
	w.WriteString(`    <xs:element name="` + n + `" msdata:IsDataSet="true" msdata:UseCurrentLocale="true">` + "\n")
	w.WriteString("      <xs:complexType>\n")
	w.WriteString(`        <xs:choice minOccurs="0" maxOccurs="unbounded">` + "\n")
	w.WriteString(`          <xs:element name="` + et + "\">\n")
	w.WriteString("            <xs:complexType>\n              <xs:sequence>\n")
	for _, c := range s.Columns {
		extra := ""
		if c.Type == dataset.DateTime {
			extra = ` msdata:DateTimeMode="Utc"`
		}
		w.WriteString(`                <xs:element name="` + c.Name + `" type="` + c.Type.String() + `"` + extra + ` minOccurs="0"/>` + "\n")
	}
	w.WriteString("              </xs:sequence>\n            </xs:complexType>\n          </xs:element>\n")
	w.WriteString("        </xs:choice>\n      </xs:complexType>\n")
	w.WriteString(`      <xs:unique name="Constraint1" msdata:PrimaryKey="true">` + "\n")
	w.WriteString(`        <xs:selector xpath=".//` + et + `"/>` + "\n")
	w.WriteString(`        <xs:field xpath="` + s.Columns[s.Key].Name + `"/>` + "\n")
	w.WriteString("      </xs:unique>\n    </xs:element>\n  </xs:schema>\n")
}

// writeEntity writes one entity, properties in schema order; an omitted value stays omitted.
func writeEntity(w *bufio.Writer, rec *dataset.Record) {
	s := rec.Schema()
	w.WriteString("  <" + s.EntityType + ">\n")
	for i, c := range s.Columns {
		v := rec.Value(i)
		if !v.Present {
			continue
		}
		w.WriteString("    <" + c.Name + ">")
		storedText.WriteString(w, v.Text())
		w.WriteString("</" + c.Name + ">\n")
	}
	w.WriteString("  </" + s.EntityType + ">\n")
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
