package archive

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/sdsops/sdsops/internal/sds"
)

// Limits that keep the checker's memory small whatever the export holds.
const (
	maxNameBytes   = 1 << 10 // one element name
	maxDepth       = 256     // open elements
	maxSchemaBytes = 1 << 20 // the document up to the end of its xs:schema
)

// dataSetChecker checks an SDS export as it streams past: one root
// element; first in it an xs:schema, which is parsed with
// sds.SummarizeDataSet to learn the entity element's name and the schema's
// id; then entity elements, which it counts; every tag well-formed and
// properly nested; nothing but whitespace, comments and processing
// instructions outside the root. It refuses DOCTYPE declarations, which
// exports never have. Failing any of that, the export is not complete and
// Write or Close fails. What leaves the document well-formed enough to
// keep (other elements among the entities, undefined entity references,
// bare '&') is only counted, for verification (verify.go) to report.
//
// encoding/xml (what SummarizeDataSet uses) runs at 33–44 MB/s here, which
// would make it the slowest stage of a 300 MB copy and cost a whole CPU;
// this byte scanner runs at 500–700 MB/s, needs no goroutine or pipe, and
// keeps only the names of the open elements. The schema, a few kilobytes,
// still gets the full parser.
type dataSetChecker struct {
	state scanState
	off   int64 // bytes consumed by earlier Writes

	stack []byte // names of the open elements, concatenated
	ends  []int  // start of each open element's name in stack
	name  []byte // the tag name being read

	quote   byte   // the quote of the attribute value being read
	lit     string // a fixed string to match, such as "CDATA["
	litPos  int
	term    string // what ends the comment, CDATA section or PI being skipped
	termPos int
	bom     int // bytes of a leading UTF-8 byte order mark seen

	rootSeen   bool
	schema     schemaPhase
	capture    []byte // the document up to the end of the schema
	entityType string
	schemaID   string // the xs:schema's id: the data source name
	entities   int64

	// Found problems that leave the export well-formed enough to keep:
	// reported by verification, not failed on.
	ref        []byte    // the entity reference being read, after '&'
	refReturn  scanState // the state to go back to after it
	others     int64     // elements where entities were expected
	firstOther string
	badRefs    int64 // undefined entity references
	firstRef   string
	bareAmps   int64 // '&' that starts no reference

	err error // sticky
}

type scanState uint8

const (
	stText       scanState = iota // character data, or whitespace outside the root
	stOpen                        // after '<'
	stStartName                   // in a start tag's name
	stAttrs                       // in a start tag, expecting an attribute, '/' or '>'
	stAttrName                    // in an attribute name
	stAttrEq                      // after an attribute name, expecting '='
	stAttrValue                   // after '=', expecting a quote
	stQuoted                      // in an attribute value
	stAfterValue                  // after an attribute value
	stEmptyEnd                    // after '/' in a start tag, expecting '>'
	stEndName                     // in an end tag's name
	stEndSpace                    // after an end tag's name, expecting '>'
	stBang                        // after "<!"
	stLiteral                     // matching lit
	stSkip                        // skipping to term
	stRef                         // in an entity or character reference, after '&'
)

// maxRefBytes bounds a reference's name: the longest predefined one is
// "quot", a character reference at most "#x10FFFF".
const maxRefBytes = 10

type schemaPhase uint8

const (
	schemaNone   schemaPhase = iota // not yet seen
	schemaOpen                      // its start tag has been read
	schemaClosed                    // its end tag has just been read
	schemaDone                      // parsed; entities follow
)

var bom = [...]byte{0xEF, 0xBB, 0xBF}

// nameByte marks bytes that may appear in an XML name: ASCII letters,
// digits, '_', ':', '-', '.' and any byte of a multi-byte UTF-8 character.
var nameByte = func() (t [256]bool) {
	for b := range 256 {
		t[b] = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '_' || b == ':' || b == '-' || b == '.' || b >= 0x80
	}
	return t
}()

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// Write checks the next bytes of the export. It returns an error as soon
// as the export cannot be a DataSet.
func (c *dataSetChecker) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	capFrom := 0 // start of the bytes of p still to be captured
	ltAt := -1   // index of the next '<' in p, once looked for
	for i := 0; i < len(p); i++ {
		b := p[i]
		tag := false // a start or end tag was completed at i
		switch c.state {
		case stText:
			if len(c.ends) > 0 {
				// Two IndexByte scans (SIMD) instead of one IndexAny (a
				// byte loop); the next '<' is remembered, so text full of
				// references is still scanned once.
				if ltAt < i {
					ltAt = len(p)
					if j := bytes.IndexByte(p[i:], '<'); j >= 0 {
						ltAt = i + j
					}
				}
				if k := bytes.IndexByte(p[i:ltAt], '&'); k >= 0 {
					i += k
					c.startRef(stText)
					continue
				}
				i = ltAt
				if i < len(p) {
					c.state = stOpen
				}
				continue
			}
			if c.bom < len(bom) && c.off+int64(i) == int64(c.bom) && b == bom[c.bom] {
				c.bom++
				capFrom = i + 1 // the schema parser gets the document without it
				continue
			}
			switch {
			case c.bom > 0 && c.bom < len(bom):
				return 0, c.fail(i, "export starts with a broken byte order mark")
			case b == '<':
				c.state = stOpen
			case !isSpace(b):
				if c.rootSeen {
					return 0, c.fail(i, "export has text after its root element")
				}
				return 0, c.fail(i, "export is not XML: it starts with %q", p[i:min(len(p), i+16)])
			}
		case stOpen:
			switch {
			case b == '/':
				c.name = c.name[:0]
				c.state = stEndName
			case b == '?':
				c.skipTo("?>")
			case b == '!':
				c.state = stBang
			case nameByte[b] && b != '-' && b != '.' && (b < '0' || b > '9'):
				c.name = append(c.name[:0], b)
				c.state = stStartName
			default:
				return 0, c.fail(i, "'<' is followed by %q", b)
			}
		case stStartName:
			switch {
			case nameByte[b]:
				if len(c.name) >= maxNameBytes {
					return 0, c.fail(i, "element name longer than %d bytes", maxNameBytes)
				}
				c.name = append(c.name, b)
			case isSpace(b):
				c.state = stAttrs
			case b == '>':
				tag = true
			case b == '/':
				c.state = stEmptyEnd
			default:
				return 0, c.fail(i, "%q in the name of element <%s>", b, show(c.name))
			}
		case stAttrs:
			switch {
			case isSpace(b):
			case b == '>':
				tag = true
			case b == '/':
				c.state = stEmptyEnd
			case nameByte[b]:
				c.state = stAttrName
			default:
				return 0, c.fail(i, "%q in the start tag of <%s>", b, show(c.name))
			}
		case stAttrName:
			switch {
			case nameByte[b]:
			case isSpace(b):
				c.state = stAttrEq
			case b == '=':
				c.state = stAttrValue
			case b == '>' || b == '/':
				return 0, c.fail(i, "attribute without a value in <%s>", show(c.name))
			default:
				return 0, c.fail(i, "%q in an attribute name of <%s>", b, show(c.name))
			}
		case stAttrEq:
			switch {
			case isSpace(b):
			case b == '=':
				c.state = stAttrValue
			default:
				return 0, c.fail(i, "attribute without a value in <%s>", show(c.name))
			}
		case stAttrValue:
			switch {
			case isSpace(b):
			case b == '"' || b == '\'':
				c.quote = b
				c.state = stQuoted
			default:
				return 0, c.fail(i, "unquoted attribute value in <%s>", show(c.name))
			}
		case stQuoted:
			switch b {
			case c.quote:
				c.state = stAfterValue
			case '&':
				c.startRef(stQuoted)
			case '<':
				return 0, c.fail(i, "'<' in an attribute value of <%s>", show(c.name))
			}
		case stAfterValue:
			switch {
			case isSpace(b):
				c.state = stAttrs
			case b == '>':
				tag = true
			case b == '/':
				c.state = stEmptyEnd
			default:
				return 0, c.fail(i, "%q after an attribute value of <%s>", b, show(c.name))
			}
		case stEmptyEnd:
			if b != '>' {
				return 0, c.fail(i, "'/' not followed by '>' in <%s>", show(c.name))
			}
			if err := c.open(true); err != nil {
				return 0, c.fail(i, "%v", err)
			}
			c.state = stText
			tag = false // open did the work of both tags
			if c.schema == schemaClosed {
				if err := c.finishSchema(p[capFrom : i+1]); err != nil {
					return 0, c.fail(i, "%v", err)
				}
			}
		case stEndName:
			switch {
			case nameByte[b]:
				if len(c.name) >= maxNameBytes {
					return 0, c.fail(i, "element name longer than %d bytes", maxNameBytes)
				}
				c.name = append(c.name, b)
			case len(c.name) == 0:
				return 0, c.fail(i, "end tag without a name")
			case isSpace(b):
				c.state = stEndSpace
			case b == '>':
				tag = true
			default:
				return 0, c.fail(i, "%q in end tag </%s>", b, show(c.name))
			}
		case stEndSpace:
			switch {
			case isSpace(b):
			case b == '>':
				tag = true
			default:
				return 0, c.fail(i, "%q in end tag </%s>", b, show(c.name))
			}
		case stBang:
			switch b {
			case '-':
				c.matchThen("-", "-->")
			case '[':
				if len(c.ends) == 0 {
					return 0, c.fail(i, "CDATA section outside the root element")
				}
				c.matchThen("CDATA[", "]]>")
			default:
				return 0, c.fail(i, "export has a <!%c declaration; an export has none", b)
			}
		case stRef:
			if b == ';' {
				c.endRef()
				continue
			}
			if len(c.ref) < maxRefBytes && (nameByte[b] || b == '#') {
				c.ref = append(c.ref, b)
				continue
			}
			// Not a reference: a bare '&'. The byte is read again in the
			// state the '&' interrupted.
			c.bareAmps++
			c.state = c.refReturn
			i--
		case stLiteral:
			if b != c.lit[c.litPos] {
				return 0, c.fail(i, "malformed comment or CDATA section")
			}
			if c.litPos++; c.litPos == len(c.lit) {
				c.state = stSkip
			}
		case stSkip:
			switch {
			case b == c.term[c.termPos]:
				if c.termPos++; c.termPos == len(c.term) {
					c.state = stText
				}
			case c.termPos > 0 && b == c.term[0] && c.term[c.termPos-1] == b:
				// "--->" still ends a comment at its last "-->".
			case b == c.term[0]:
				c.termPos = 1
			default:
				c.termPos = 0
			}
		}
		if !tag {
			continue
		}
		var err error
		if c.state == stEndName || c.state == stEndSpace {
			err = c.close()
		} else {
			err = c.open(false)
		}
		if err != nil {
			return 0, c.fail(i, "%v", err)
		}
		c.state = stText
		if c.schema == schemaClosed {
			if err := c.finishSchema(p[capFrom : i+1]); err != nil {
				return 0, c.fail(i, "%v", err)
			}
		}
	}
	if c.schema < schemaDone {
		if len(c.capture)+len(p)-capFrom > maxSchemaBytes {
			return 0, c.fail(len(p), "export has no complete xs:schema in its first %d bytes", maxSchemaBytes)
		}
		c.capture = append(c.capture, p[capFrom:]...)
	}
	c.off += int64(len(p))
	return len(p), nil
}

// Close reports whether the export ended as a complete DataSet.
func (c *dataSetChecker) Close() error {
	if c.err != nil {
		return c.err
	}
	switch {
	case c.state != stText && c.state != stRef:
		c.err = fmt.Errorf("export ends inside a tag, comment or CDATA section (after %d entities, %d bytes)", c.entities, c.off)
	case len(c.ends) > 0:
		c.err = fmt.Errorf("export ends inside element <%s> (after %d entities, %d bytes)", show(c.stack[c.ends[len(c.ends)-1]:]), c.entities, c.off)
	case !c.rootSeen:
		c.err = fmt.Errorf("export has no root element (%d bytes)", c.off)
	case c.schema != schemaDone:
		c.err = errors.New("export has no xs:schema describing its entity type")
	}
	return c.err
}

func (c *dataSetChecker) skipTo(term string) {
	c.term, c.termPos, c.state = term, 0, stSkip
}

func (c *dataSetChecker) matchThen(lit, term string) {
	c.lit, c.litPos = lit, 0
	c.term, c.termPos = term, 0
	c.state = stLiteral
}

func (c *dataSetChecker) startRef(ret scanState) {
	c.ref, c.refReturn, c.state = c.ref[:0], ret, stRef
}

// endRef checks a complete reference: one of XML's five predefined
// entities or a character reference. An export has no DTD, so any other
// name is undefined.
func (c *dataSetChecker) endRef() {
	c.state = c.refReturn
	switch r := string(c.ref); {
	case r == "lt" || r == "gt" || r == "amp" || r == "quot" || r == "apos":
		return
	case len(r) > 2 && (r[:2] == "#x"):
		if _, err := strconv.ParseUint(r[2:], 16, 32); err == nil {
			return
		}
	case len(r) > 1 && r[0] == '#':
		if _, err := strconv.ParseUint(r[1:], 10, 32); err == nil {
			return
		}
	case r == "":
		c.bareAmps++
		return
	}
	if c.badRefs == 0 {
		c.firstRef = "&" + show(c.ref) + ";"
	}
	c.badRefs++
}

// open handles a completed start tag (empty: <name/>).
func (c *dataSetChecker) open(empty bool) error {
	switch len(c.ends) {
	case 0:
		if c.rootSeen {
			return fmt.Errorf("export has a second root element <%s>", show(c.name))
		}
		c.rootSeen = true
	case 1:
		local := localName(c.name)
		switch c.schema {
		case schemaNone:
			if string(local) != "schema" {
				return fmt.Errorf("export has a <%s> element before its xs:schema", show(c.name))
			}
			c.schema = schemaOpen
			if empty {
				c.schema = schemaClosed
			}
		case schemaDone:
			if string(local) != c.entityType {
				if c.others == 0 {
					c.firstOther = show(c.name)
				}
				c.others++
				break
			}
			c.entities++
		}
	}
	if empty {
		return nil
	}
	if len(c.ends) >= maxDepth {
		return fmt.Errorf("elements nested more than %d deep", maxDepth)
	}
	c.ends = append(c.ends, len(c.stack))
	c.stack = append(c.stack, c.name...)
	return nil
}

// close handles a completed end tag.
func (c *dataSetChecker) close() error {
	if len(c.ends) == 0 {
		return fmt.Errorf("end tag </%s> without a start tag", show(c.name))
	}
	last := len(c.ends) - 1
	if open := c.stack[c.ends[last]:]; !bytes.Equal(open, c.name) {
		return fmt.Errorf("end tag </%s> closes <%s> (after %d entities)", show(c.name), show(open), c.entities)
	}
	c.stack = c.stack[:c.ends[last]]
	c.ends = c.ends[:last]
	if last == 1 && c.schema == schemaOpen {
		c.schema = schemaClosed
	}
	return nil
}

// finishSchema parses the document up to the end of its schema, closed
// with the root's end tag, to learn the entity element's name.
func (c *dataSetChecker) finishSchema(last []byte) error {
	doc := append(c.capture, last...)
	doc = append(doc, "</"...)
	doc = append(doc, c.stack...) // only the root is open
	doc = append(doc, '>')
	c.capture = nil
	sum, err := sds.SummarizeDataSet(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	c.entityType = sum.EntityType
	c.schemaID = sum.DataSetName
	c.schema = schemaDone
	return nil
}

func (c *dataSetChecker) fail(i int, format string, args ...any) error {
	c.err = fmt.Errorf("%s at byte %d", fmt.Sprintf(format, args...), c.off+int64(i))
	return c.err
}

func localName(name []byte) []byte {
	if i := bytes.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// show makes a name from the export safe and short for an error message.
func show(name []byte) string {
	const max = 40
	s := fmt.Sprintf("%q", name[:min(len(name), max)])
	s = s[1 : len(s)-1]
	if len(name) > max {
		s += "…"
	}
	return s
}
