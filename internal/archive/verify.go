package archive

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// verifyInput is what the checks of a complete export look at.
type verifyInput struct {
	req   Request
	check *dataSetChecker
	utf8  *utf8Check
}

// checks are the verification of an export that arrived complete. Each
// returns "" when it passed, else the reason. An archive is verified only
// when every check passed; otherwise it is kept, with the reasons in its
// manifest. The order is the order reasons are reported in.
var checks = []struct {
	name string
	run  func(verifyInput) string
}{
	{"structure", func(in verifyInput) string {
		if c := in.check; c.others > 0 {
			return fmt.Sprintf("structure: %d elements other than <%s> among the entities, the first <%s>", c.others, show([]byte(c.entityType)), c.firstOther)
		}
		return ""
	}},
	{"schema", func(in verifyInput) string {
		if id := in.check.schemaID; !strings.EqualFold(id, in.req.DataSourceName) {
			return fmt.Sprintf("schema: the xs:schema describes data source %q, not %q", show([]byte(id)), in.req.DataSourceName)
		}
		return ""
	}},
	{"text", func(in verifyInput) string {
		var bad []string
		if c := in.check; c.badRefs > 0 {
			bad = append(bad, fmt.Sprintf("%d undefined entity references (the first %s)", c.badRefs, c.firstRef))
		}
		if c := in.check; c.bareAmps > 0 {
			bad = append(bad, fmt.Sprintf("%d bare '&'", c.bareAmps))
		}
		if u := in.utf8; u.bad > 0 {
			bad = append(bad, fmt.Sprintf("invalid UTF-8 (first at byte %d)", u.firstBad))
		}
		if len(bad) > 0 {
			return "text: " + strings.Join(bad, ", ")
		}
		return ""
	}},
	{"entityCount", func(in verifyInput) string {
		got, want := in.check.entities, in.req.ExpectedEntities
		switch {
		case want == 0:
			return fmt.Sprintf("entity count: the job reported no total, so the %d entities could not be checked", got)
		case got != want:
			return fmt.Sprintf("entity count: the export has %d entities, the job reported %d", got, want)
		}
		return ""
	}},
}

// verify runs every check and returns the reasons of those that failed.
func verify(in verifyInput) []string {
	var problems []string
	for _, c := range checks {
		if p := c.run(in); p != "" {
			problems = append(problems, p)
		}
	}
	return problems
}

// utf8Check validates a byte stream as UTF-8 across chunk boundaries.
type utf8Check struct {
	carry    []byte // an incomplete character at the end of the last chunk
	off      int64
	bad      int64
	firstBad int64
}

func (u *utf8Check) Write(p []byte) {
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

func (u *utf8Check) invalid(at int64) {
	if u.bad == 0 {
		u.firstBad = at
	}
	u.bad++
}

// Close reports a character cut off by the end of the stream.
func (u *utf8Check) Close() {
	if len(u.carry) > 0 {
		u.invalid(u.off - int64(len(u.carry)))
		u.carry = nil
	}
}
