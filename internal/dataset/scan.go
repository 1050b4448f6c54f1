package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits that keep the scanner's memory small whatever the export holds.
const (
	maxNameBytes   = 1 << 10 // one element name
	maxDepth       = 256     // open elements
	maxSchemaBytes = 1 << 20 // the document up to the end of its xs:schema
	// A geography of the SDS maximum of 100,000 points is about 4 MB of WKT.
	maxValueBytes  = 8 << 20
	maxEntityBytes = 16 << 20
	maxRefBytes    = 12 // "#x10FFFF" and the longest named reference fit
)

// scanner checks an export as it streams past, byte by byte, keeping only
// the names of the open elements and, when it yields records, the values
// of the current entity. It does everything a strict XML parser does for
// an export (well-formedness, entity references, UTF-8, legal characters)
// except for what an export never contains: a DOCTYPE is refused, and
// comments are skipped without looking inside.
type scanner struct {
	expect  string // the data source name the schema must have; "" for any
	records bool   // collect field values into rec
	// lenient, when set, records flaws that leave the export readable
	// instead of failing on them (NewLenientVerifier).
	lenient *findings
	// fold and recordErrs are the Reader's options FoldNames and RecordErrors.
	fold, recordErrs bool

	state scanState
	off   int64 // bytes consumed by earlier calls

	stack []byte // names of the open elements, concatenated
	ends  []int  // start of each open element's name in stack
	name  []byte // the tag name being read

	quote   byte   // the quote of the attribute value being read
	lit     string // a fixed string to match, such as "CDATA["
	litPos  int
	term    string // what ends the comment, CDATA section or PI being skipped
	termPos int
	bom     int // bytes of a leading UTF-8 byte order mark seen

	ref    [maxRefBytes]byte // the entity reference being read, after '&'
	refLen int
	refRet scanState // where the reference was: stText or stQuoted

	tail    [utf8.UTFMax]byte // the start of a character split between calls
	tailLen int

	rootSeen bool
	root     string
	phase    schemaPhase
	capture  []byte // the document up to the end of the schema
	schema   *Schema
	entities int64

	rec      Record
	col      int    // column of the field being read, -1 outside one
	guess    int    // the column the next field probably is
	val      []byte // its value so far
	recBytes int
	ready    bool // rec holds a complete entity not yet handed out
	inOther  bool // a lenient scan is inside an element other than an entity

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
	stRef                         // in an entity reference
	stPITarget                    // after "<?", expecting the target's name
)

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

// control marks the ASCII control characters XML forbids everywhere.
var control = func() (t [256]bool) {
	for b := range 0x20 {
		t[b] = b != '\t' && b != '\n' && b != '\r'
	}
	return t
}()

// textStop marks the bytes that end a run of character data.
var textStop = func() (t [256]bool) {
	t = control
	t['<'], t['&'] = true, true
	return t
}()

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanText returns the index of the first byte of p that ends character
// data ('<', '&' or a forbidden control character), or len(p). It tests
// eight bytes at a time: text is most of an export.
func scanText(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		x := binary.LittleEndian.Uint64(p[i:])
		// A high bit set in any of these marks a byte < 0x20, a '<' or a
		// '&' (and maybe false alarms after it, which the loop below sorts out).
		below := (x - ones*0x20) &^ x
		lt := (x ^ ones*'<' - ones) &^ (x ^ ones*'<')
		amp := (x ^ ones*'&' - ones) &^ (x ^ ones*'&')
		if (below|lt|amp)&highs == 0 {
			continue
		}
		for k := i; k < i+8; k++ {
			if textStop[p[k]] {
				return k
			}
		}
	}
	for ; i < len(p); i++ {
		if textStop[p[i]] {
			return i
		}
	}
	return len(p)
}

// nameEnd returns the end of the run of name bytes starting at i.
func nameEnd(p []byte, i int) int {
	for i < len(p) && nameByte[p[i]] {
		i++
	}
	return i
}

// feed scans p up to its end or, when collecting records, up to the end
// of the next entity; it returns the bytes consumed.
func (c *scanner) feed(p []byte) (n int, err error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err = c.scan(p)
	switch {
	case err != nil:
	case c.lenient != nil:
		c.lenient.utf8.write(p[:n])
	default:
		err = c.checkUTF8(p[:n])
	}
	c.off += int64(n)
	return n, err
}

func (c *scanner) scan(p []byte) (int, error) {
	capFrom := 0 // start of the bytes of p still to be captured
	for i := 0; i < len(p); i++ {
		b := p[i]
		const (
			none = iota
			startTag
			emptyTag
			endTag
		)
		ev := none
		switch c.state {
		case stText:
			if len(c.ends) > 0 {
				j := i + scanText(p[i:])
				if c.col >= 0 {
					if err := c.keep(p[i:j]); err != nil {
						return 0, c.fail(i, "%v", err)
					}
				}
				i = j
				if i == len(p) {
					continue
				}
				switch p[i] {
				case '<':
					c.state = stOpen
				case '&':
					c.refLen, c.refRet, c.state = 0, stText, stRef
				default:
					if c.lenient != nil {
						c.lenient.controls++
						continue
					}
					return 0, c.fail(i, "control character %#02x in text", p[i])
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
				c.state = stPITarget
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
				j := nameEnd(p, i)
				if len(c.name)+j-i > maxNameBytes {
					return 0, c.fail(i, "element name longer than %d bytes", maxNameBytes)
				}
				c.name = append(c.name, p[i:j]...)
				i = j - 1
			case isSpace(b):
				c.state = stAttrs
			case b == '>':
				ev = startTag
			case b == '/':
				c.state = stEmptyEnd
			default:
				return 0, c.fail(i, "%q in the name of element <%s>", b, show(c.name))
			}
		case stAttrs:
			switch {
			case isSpace(b):
			case b == '>':
				ev = startTag
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
			switch {
			case b == c.quote:
				c.state = stAfterValue
			case b == '<':
				return 0, c.fail(i, "'<' in an attribute value of <%s>", show(c.name))
			case b == '&':
				c.refLen, c.refRet, c.state = 0, stQuoted, stRef
			case control[b]:
				if c.lenient != nil {
					c.lenient.controls++
					continue
				}
				return 0, c.fail(i, "control character %#02x in an attribute value of <%s>", b, show(c.name))
			}
		case stAfterValue:
			switch {
			case isSpace(b):
				c.state = stAttrs
			case b == '>':
				ev = startTag
			case b == '/':
				c.state = stEmptyEnd
			default:
				return 0, c.fail(i, "%q after an attribute value of <%s>", b, show(c.name))
			}
		case stEmptyEnd:
			if b != '>' {
				return 0, c.fail(i, "'/' not followed by '>' in <%s>", show(c.name))
			}
			ev = emptyTag
		case stEndName:
			switch {
			case nameByte[b]:
				j := nameEnd(p, i)
				if len(c.name)+j-i > maxNameBytes {
					return 0, c.fail(i, "element name longer than %d bytes", maxNameBytes)
				}
				c.name = append(c.name, p[i:j]...)
				i = j - 1
			case len(c.name) == 0:
				return 0, c.fail(i, "end tag without a name")
			case isSpace(b):
				c.state = stEndSpace
			case b == '>':
				ev = endTag
			default:
				return 0, c.fail(i, "%q in end tag </%s>", b, show(c.name))
			}
		case stEndSpace:
			switch {
			case isSpace(b):
			case b == '>':
				ev = endTag
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
		case stLiteral:
			if b != c.lit[c.litPos] {
				return 0, c.fail(i, "malformed comment or CDATA section")
			}
			if c.litPos++; c.litPos == len(c.lit) {
				c.state = stSkip
			}
		case stSkip:
			if control[b] {
				if c.lenient == nil {
					return 0, c.fail(i, "control character %#02x", b)
				}
				c.lenient.controls++
			}
			cdata := c.term == "]]>"
			if cdata && c.col >= 0 {
				if err := c.keep(p[i : i+1]); err != nil {
					return 0, c.fail(i, "%v", err)
				}
			}
			switch {
			case b == c.term[c.termPos]:
				if c.termPos++; c.termPos == len(c.term) {
					c.state = stText
					if cdata && c.col >= 0 {
						c.val = c.val[:len(c.val)-len(c.term)]
					}
				}
			case c.termPos > 0 && b == c.term[0] && c.term[c.termPos-1] == b:
				// "--->" still ends a comment at its last "-->".
			case b == c.term[0]:
				c.termPos = 1
			default:
				c.termPos = 0
			}
		case stPITarget:
			if !nameByte[b] || b == '-' || b == '.' || b >= '0' && b <= '9' {
				return 0, c.fail(i, "'<?' is followed by %q", b)
			}
			c.skipTo("?>")
		case stRef:
			if b != ';' {
				if c.refLen == len(c.ref) || !(nameByte[b] || b == '#') {
					if c.lenient != nil {
						// The byte is read again where the '&' interrupted.
						c.lenient.bareAmps++
						c.state = c.refRet
						i--
						continue
					}
					return 0, c.fail(i, "'&' that starts no entity reference (a bare '&' must be written &amp;)")
				}
				c.ref[c.refLen] = b
				c.refLen++
				continue
			}
			r, ok := refRune(c.ref[:c.refLen])
			if !ok && c.lenient != nil {
				c.lenient.reference(c.ref[:c.refLen])
				c.state = c.refRet
				continue
			}
			if !ok {
				return 0, c.fail(i, "undefined entity reference &%s;", show(c.ref[:c.refLen]))
			}
			if c.refRet == stText && c.col >= 0 {
				var enc [utf8.UTFMax]byte
				if err := c.keep(enc[:utf8.EncodeRune(enc[:], r)]); err != nil {
					return 0, c.fail(i, "%v", err)
				}
			}
			c.state = c.refRet
		}
		if ev == none {
			continue
		}
		var err error
		if ev == endTag {
			err = c.close()
		} else {
			err = c.open(ev == emptyTag)
		}
		if err != nil {
			return 0, c.fail(i, "%v", err)
		}
		c.state = stText
		if c.phase == schemaClosed {
			if err := c.finishSchema(p[capFrom : i+1]); err != nil {
				return 0, c.fail(i, "%v", err)
			}
		}
		if c.ready {
			return i + 1, nil
		}
	}
	if c.phase < schemaDone {
		if len(c.capture)+len(p)-capFrom > maxSchemaBytes {
			return 0, c.fail(len(p), "export has no complete xs:schema in its first %d bytes", maxSchemaBytes)
		}
		c.capture = append(c.capture, p[capFrom:]...)
	}
	return len(p), nil
}

// refRune decodes the entity reference name (without '&' and ';').
func refRune(name []byte) (rune, bool) {
	switch string(name) {
	case "amp":
		return '&', true
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "quot":
		return '"', true
	case "apos":
		return '\'', true
	}
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 {
		return 0, false
	}
	var r rune
	for _, d := range digits {
		var v rune
		switch {
		case d >= '0' && d <= '9':
			v = rune(d - '0')
		case base == 16 && d >= 'a' && d <= 'f':
			v = rune(d-'a') + 10
		case base == 16 && d >= 'A' && d <= 'F':
			v = rune(d-'A') + 10
		default:
			return 0, false
		}
		if r = r*rune(base) + v; r > utf8.MaxRune {
			return 0, false
		}
	}
	return r, isXMLChar(r)
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= utf8.MaxRune
}

// checkUTF8 validates p as the continuation of what came before; a
// character split between calls is completed on the next one.
func (c *scanner) checkUTF8(p []byte) error {
	if c.tailLen > 0 {
		need := 4
		switch t := c.tail[0]; {
		case t < 0xE0:
			need = 2
		case t < 0xF0:
			need = 3
		}
		k := copy(c.tail[c.tailLen:need], p)
		c.tailLen += k
		p = p[k:]
		if c.tailLen < need {
			return nil
		}
		if !utf8.Valid(c.tail[:need]) {
			return c.fail(0, "export is not valid UTF-8")
		}
		c.tailLen = 0
	}
	cut := len(p)
	for k := len(p) - 1; k >= 0 && k >= len(p)-utf8.UTFMax+1; k-- {
		if p[k] < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(p[k]) {
			if !utf8.FullRune(p[k:]) {
				cut = k
			}
			break
		}
	}
	if !utf8.Valid(p[:cut]) {
		return c.fail(0, "export is not valid UTF-8 (within the %d bytes from here)", cut)
	}
	c.tailLen = copy(c.tail[:], p[cut:])
	return nil
}

// keep appends text to the value of the field being read.
func (c *scanner) keep(text []byte) error {
	if len(c.val)+len(text) > maxValueBytes {
		return fmt.Errorf("value of %s longer than %d bytes (entity %d)", c.schema.Columns[c.col].Name, maxValueBytes, c.entities)
	}
	c.val = append(c.val, text...)
	return nil
}

func (c *scanner) skipTo(term string) {
	c.term, c.termPos, c.state = term, 0, stSkip
}

func (c *scanner) matchThen(lit, term string) {
	c.lit, c.litPos = lit, 0
	c.term, c.termPos = term, 0
	c.state = stLiteral
}

// open handles a completed start tag (empty: <name/>).
func (c *scanner) open(empty bool) error {
	switch depth := len(c.ends); {
	case depth == 0:
		if c.rootSeen {
			return fmt.Errorf("export has a second root element <%s>", show(c.name))
		}
		c.rootSeen = true
		c.root = string(c.name)
	case depth == 1:
		local := localName(c.name)
		switch c.phase {
		case schemaNone:
			if string(local) != "schema" {
				return fmt.Errorf("export has a <%s> element before its xs:schema", show(c.name))
			}
			c.phase = schemaOpen
			if empty {
				c.phase = schemaClosed
			}
		case schemaDone:
			c.inOther = false
			if string(local) != c.schema.EntityType && c.lenient != nil {
				c.lenient.other(c.name)
				c.inOther = true
				break
			}
			if string(local) != c.schema.EntityType {
				return fmt.Errorf("export has a <%s> element where <%s> entities were expected (after %d entities)",
					show(c.name), c.schema.EntityType, c.entities)
			}
			if c.entities == MaxEntities && c.lenient == nil {
				return fmt.Errorf("export has more than %d entities, the SDS limit", MaxEntities)
			}
			c.entities++
			if c.records {
				clear(c.rec.set)
				c.rec.err = nil
				c.guess = 0
				c.recBytes = 0
				c.ready = empty
			}
		}
	case depth == 2 && c.records && c.phase == schemaDone && !c.inOther:
		// Fields come in schema order: try the column after the last one
		// before hashing the name.
		col, ok := c.guess, c.guess < len(c.schema.Columns) && string(c.name) == c.schema.Columns[c.guess].Name
		if !ok {
			col, ok = c.schema.index[string(c.name)]
		}
		if !ok && c.fold {
			col = c.schema.Index(string(c.name))
			ok = col >= 0
		}
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("entity %d has a <%s> element, which is not a column of %s", c.entities, show(c.name), c.schema.EntityType)
		case c.rec.set[col]:
			err = fmt.Errorf("entity %d has two <%s> elements", c.entities, show(c.name))
		case empty:
			c.val = c.val[:0]
			return c.store(col)
		default:
			c.val = c.val[:0]
			c.col = col
		}
		if err != nil {
			if !c.recordErrs {
				return err
			}
			c.recordErr(err)
		}
	case depth == 3 && c.records && c.phase == schemaDone && !c.inOther:
		err := fmt.Errorf("entity %d: field <%s> holds an element <%s>", c.entities, show(c.stack[c.ends[2]:]), show(c.name))
		if !c.recordErrs {
			return err
		}
		// The field's value is left out; its text is no longer collected.
		c.recordErr(err)
		c.col = -1
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

// recordErr notes the first fault of the current entity (RecordErrors).
func (c *scanner) recordErr(err error) {
	if c.rec.err == nil {
		c.rec.err = err
	}
}

// close handles a completed end tag.
func (c *scanner) close() error {
	if len(c.ends) == 0 {
		return fmt.Errorf("end tag </%s> without a start tag", show(c.name))
	}
	last := len(c.ends) - 1
	if open := c.stack[c.ends[last]:]; !bytes.Equal(open, c.name) {
		return fmt.Errorf("end tag </%s> closes <%s> (after %d entities)", show(c.name), show(open), c.entities)
	}
	c.stack = c.stack[:c.ends[last]]
	c.ends = c.ends[:last]
	switch {
	case last == 1 && c.phase == schemaOpen:
		c.phase = schemaClosed
	case last == 2 && c.col >= 0:
		col := c.col
		c.col = -1
		return c.store(col)
	case last == 1 && c.records && c.phase == schemaDone && !c.inOther:
		c.ready = true
	}
	return nil
}

// store makes the value read the record's value of column col.
func (c *scanner) store(col int) error {
	if c.recBytes += len(c.val); c.recBytes > maxEntityBytes {
		return fmt.Errorf("entity %d is larger than %d bytes", c.entities, maxEntityBytes)
	}
	// Swap rather than copy: the column keeps the buffer, the old one is reused.
	c.rec.vals[col], c.val = c.val, c.rec.vals[col][:0]
	c.rec.set[col] = true
	c.guess = col + 1
	return nil
}

// finishSchema parses the document up to the end of its schema, closed
// with the root's end tag.
func (c *scanner) finishSchema(last []byte) error {
	doc := append(c.capture, last...)
	doc = append(doc, "</"...)
	doc = append(doc, c.stack...) // only the root is open
	doc = append(doc, '>')
	c.capture = nil
	s, err := parseSchema(doc, c.fold)
	if err != nil {
		return err
	}
	switch {
	case c.expect == "" || strings.EqualFold(s.DataSetName, c.expect):
	case c.lenient != nil:
		c.lenient.wrongName = show([]byte(s.DataSetName))
	default:
		return fmt.Errorf("export is of data source %q, not %q", clip(s.DataSetName), c.expect)
	}
	c.schema = s
	c.phase = schemaDone
	if c.records {
		c.rec = Record{schema: s, vals: make([][]byte, len(s.Columns)), set: make([]bool, len(s.Columns))}
	}
	return nil
}

// end reports whether the export ended as a complete DataSet.
func (c *scanner) end() error {
	if c.err != nil {
		return c.err
	}
	if c.lenient != nil {
		c.lenient.utf8.end()
	}
	switch {
	case c.state == stRef:
		c.err = fmt.Errorf("export ends inside an entity reference (after %d entities, %d bytes)", c.entities, c.off)
	case c.state != stText:
		c.err = fmt.Errorf("export ends inside a tag, comment or CDATA section (after %d entities, %d bytes)", c.entities, c.off)
	case len(c.ends) > 0:
		c.err = fmt.Errorf("export ends inside element <%s> (after %d entities, %d bytes)", show(c.stack[c.ends[len(c.ends)-1]:]), c.entities, c.off)
	case c.tailLen > 0:
		c.err = fmt.Errorf("export ends inside a UTF-8 character (%d bytes)", c.off)
	case !c.rootSeen:
		c.err = fmt.Errorf("export has no root element (%d bytes)", c.off)
	case c.phase != schemaDone:
		c.err = errors.New("export has no xs:schema describing its entity type")
	}
	return c.err
}

func (c *scanner) fail(i int, format string, args ...any) error {
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
