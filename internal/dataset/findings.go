package dataset

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// findings are what a lenient Verifier records instead of failing: flaws
// that leave an export well-formed enough to keep, but not to vouch for.
type findings struct {
	others     int64 // elements where entities were expected
	firstOther string
	badRefs    int64 // undefined entity references
	firstRef   string
	bareAmps   int64 // '&' that starts no reference
	controls   int64 // control characters XML forbids
	wrongName  string
	utf8       utf8Count
}

// NewLenientVerifier returns a Verifier that fails only when the bytes
// cannot be a complete DataSet (cut short, not well-formed, no schema).
// Flaws that leave the export readable are recorded for Problems instead:
// elements other than entities after the schema, a schema of another
// data source, undefined entity references, bare '&', forbidden control
// characters and invalid UTF-8. It also does not enforce MaxEntities:
// the count is compared with the job's total by Problems.
func NewLenientVerifier(dataSetName string) *Verifier {
	return &Verifier{sc: scanner{expect: dataSetName, col: -1, lenient: &findings{}}}
}

// NoTotal is the expected entity count of a job that gave no total.
const NoTotal = -1

// Problems returns, after a successful Close of a lenient Verifier, why the
// export cannot be vouched for: nil when every check passed. expected is
// the entity count the export should have, 0 for an empty data source;
// NoTotal (unknown) is itself a problem, since the count cannot be
// checked. The order is fixed: structure, schema, text, entity count.
func (v *Verifier) Problems(expected int64) []string {
	f := v.sc.lenient
	if f == nil {
		return nil
	}
	var problems []string
	if f.others > 0 {
		problems = append(problems, fmt.Sprintf("structure: %d elements other than <%s> among the entities, the first <%s>",
			f.others, show([]byte(v.sc.schema.EntityType)), f.firstOther))
	}
	if f.wrongName != "" {
		problems = append(problems, fmt.Sprintf("schema: the xs:schema describes data source %q, not %q", f.wrongName, v.sc.expect))
	}
	var bad []string
	if f.badRefs > 0 {
		bad = append(bad, fmt.Sprintf("%d undefined entity references (the first %s)", f.badRefs, f.firstRef))
	}
	if f.bareAmps > 0 {
		bad = append(bad, fmt.Sprintf("%d bare '&'", f.bareAmps))
	}
	if f.controls > 0 {
		bad = append(bad, fmt.Sprintf("%d control characters XML forbids", f.controls))
	}
	if u := f.utf8; u.bad > 0 {
		bad = append(bad, fmt.Sprintf("invalid UTF-8 (first at byte %d)", u.firstBad))
	}
	if len(bad) > 0 {
		problems = append(problems, "text: "+strings.Join(bad, ", "))
	}
	switch got := v.sc.entities; {
	case expected < 0:
		problems = append(problems, fmt.Sprintf("entity count: the job reported no total, so the %d entities could not be checked", got))
	case got != expected:
		problems = append(problems, fmt.Sprintf("entity count: the export has %d entities, the job reported %d", got, expected))
	}
	return problems
}

// reference records a complete reference (the name between '&' and ';')
// that is not one XML defines without a DTD.
func (f *findings) reference(name []byte) {
	if len(name) == 0 {
		f.bareAmps++
		return
	}
	if f.badRefs == 0 {
		f.firstRef = "&" + show(name) + ";"
	}
	f.badRefs++
}

func (f *findings) other(name []byte) {
	if f.others == 0 {
		f.firstOther = show(name)
	}
	f.others++
}

// utf8Count counts invalid UTF-8 sequences in a stream, across chunk
// boundaries.
type utf8Count struct {
	carry    []byte // an incomplete character at the end of the last chunk
	off      int64
	bad      int64
	firstBad int64
}

func (u *utf8Count) write(p []byte) {
	start := u.off
	u.off += int64(len(p))
	if len(u.carry) > 0 {
		for len(p) > 0 && !utf8.FullRune(u.carry) {
			u.carry = append(u.carry, p[0])
			p = p[1:]
			start++
		}
		if !utf8.FullRune(u.carry) {
			return
		}
		if r, size := utf8.DecodeRune(u.carry); r == utf8.RuneError && size <= 1 || size != len(u.carry) {
			u.invalid(start - int64(len(u.carry)))
			// The bytes after the first are read again as they come.
			p = append(u.carry[1:len(u.carry):len(u.carry)], p...)
			start -= int64(len(u.carry) - 1)
		}
		u.carry = u.carry[:0]
	}
	// Keep an incomplete last character for the next chunk.
	for k := 1; k <= 3 && k <= len(p); k++ {
		if utf8.RuneStart(p[len(p)-k]) {
			if !utf8.FullRune(p[len(p)-k:]) {
				u.carry = append(u.carry[:0], p[len(p)-k:]...)
				p = p[:len(p)-k]
			}
			break
		}
	}
	if utf8.Valid(p) {
		return
	}
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size <= 1 {
			u.invalid(start + int64(i))
		}
		i += size
	}
}

func (u *utf8Count) invalid(at int64) {
	if u.bad == 0 {
		u.firstBad = at
	}
	u.bad++
}

// end counts a character cut off by the end of the stream.
func (u *utf8Count) end() {
	if len(u.carry) > 0 {
		u.invalid(u.off - int64(len(u.carry)))
		u.carry = nil
	}
}
