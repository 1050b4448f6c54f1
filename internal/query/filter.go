package query

import (
	"cmp"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
)

// tri is a truth value of SQL's three-valued logic: a comparison with an
// omitted value is unknown, and an entity is answered only when its filter
// is true (SDS ran on SQL Server, which filters so).
type tri uint8

const (
	tFalse tri = iota
	tTrue
	tUnknown
)

func triOf(b bool) tri {
	if b {
		return tTrue
	}
	return tFalse
}

// filterVec keeps the entities of idx for which n is true, in place, and
// the distances of dist beside them (dist may be nil).
func filterVec(t *Table, n node, idx []int32, dist []float64) ([]int32, []float64) {
	out := make([]tri, len(idx))
	n.evalVec(t, idx, out)
	kept := 0
	for k, i := range idx {
		if out[k] == tTrue {
			idx[kept] = i
			if dist != nil {
				dist[kept] = dist[k]
			}
			kept++
		}
	}
	if dist != nil {
		dist = dist[:kept]
	}
	return idx[:kept], dist
}

// node is a $filter expression, evaluated a column at a time: out[k] is
// its value for entity idx[k].
type node interface {
	evalVec(t *Table, idx []int32, out []tri)
}

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }

// Kleene's tables, indexed [l][r] by tFalse, tTrue, tUnknown.
var (
	andTable = [3][3]tri{{tFalse, tFalse, tFalse}, {tFalse, tTrue, tUnknown}, {tFalse, tUnknown, tUnknown}}
	orTable  = [3][3]tri{{tFalse, tTrue, tUnknown}, {tTrue, tTrue, tTrue}, {tUnknown, tTrue, tUnknown}}
	notTable = [3]tri{tTrue, tFalse, tUnknown}
)

func (n andNode) evalVec(t *Table, idx []int32, out []tri) { binary(t, n.l, n.r, &andTable, idx, out) }
func (n orNode) evalVec(t *Table, idx []int32, out []tri)  { binary(t, n.l, n.r, &orTable, idx, out) }

func binary(t *Table, l, r node, table *[3][3]tri, idx []int32, out []tri) {
	l.evalVec(t, idx, out)
	rv := make([]tri, len(idx))
	r.evalVec(t, idx, rv)
	for k := range out {
		out[k] = table[out[k]][rv[k]]
	}
}

func (n notNode) evalVec(t *Table, idx []int32, out []tri) {
	n.x.evalVec(t, idx, out)
	for k := range out {
		out[k] = notTable[out[k]]
	}
}

type op uint8

const (
	opEq op = iota
	opNe
	opGt
	opGe
	opLt
	opLe
)

var ops = map[string]op{"eq": opEq, "ne": opNe, "gt": opGt, "ge": opGe, "lt": opLt, "le": opLe}

// flip turns "literal op property" into "property op' literal".
func (o op) flip() op {
	switch o {
	case opGt:
		return opLt
	case opGe:
		return opLe
	case opLt:
		return opGt
	case opLe:
		return opGe
	}
	return o
}

// holdsTable[op][c+1] tells whether a three-way comparison c satisfies op.
var holdsTable = [6][3]bool{
	opEq: {false, true, false},
	opNe: {true, false, true},
	opGt: {false, false, true},
	opGe: {false, true, true},
	opLt: {true, false, false},
	opLe: {true, true, false},
}

// cmpNode compares a column with a literal of the column's type.
type cmpNode struct {
	col int
	op  op
	lit Value
	num bool // a Long column against a literal with a fraction: compared as doubles
}

func (n cmpNode) evalVec(t *Table, idx []int32, out []tri) {
	d := &t.cols[n.col]
	h := &holdsTable[n.op]
	set := func(k int, c int) { out[k] = triOf(h[c+1]) }
	switch t.Columns[n.col].Type {
	case dataset.Long:
		for k, i := range idx {
			switch {
			case d.null[i]:
				out[k] = tUnknown
			case n.num:
				set(k, cmp.Compare(float64(d.ints[i]), n.lit.Num))
			default:
				set(k, cmp.Compare(d.ints[i], n.lit.Int))
			}
		}
	case dataset.Double:
		for k, i := range idx {
			if d.null[i] || math.IsNaN(d.nums[i]) {
				out[k] = tUnknown
				continue
			}
			set(k, cmp.Compare(d.nums[i], n.lit.Num))
		}
	case dataset.Boolean:
		for k, i := range idx {
			if d.null[i] {
				out[k] = tUnknown
				continue
			}
			set(k, cmpBool(d.bools[i], n.lit.Bool))
		}
	case dataset.DateTime:
		for k, i := range idx {
			if d.null[i] {
				out[k] = tUnknown
				continue
			}
			set(k, d.times[i].Compare(n.lit.Time))
		}
	default:
		lit, eq := n.lit.Str, n.op == opEq
		for k, i := range idx {
			switch {
			case d.null[i]:
				out[k] = tUnknown
			case n.op == opEq || n.op == opNe: // without a three-way compare
				out[k] = triOf((d.str[i] == lit) == eq)
			default:
				set(k, strings.Compare(d.str[i], lit))
			}
		}
	}
}

// nullNode is "property eq null" or "property ne null".
type nullNode struct {
	col  int
	want bool // eq null
}

func (n nullNode) evalVec(t *Table, idx []int32, out []tri) {
	null := t.cols[n.col].null
	for k, i := range idx {
		out[k] = triOf(null[i] == n.want)
	}
}

// wildNode is StartsWith or EndsWith.
type wildNode struct {
	col    int
	prefix bool
	s      string
	want   bool
}

func (n wildNode) evalVec(t *Table, idx []int32, out []tri) {
	d := &t.cols[n.col]
	for k, i := range idx {
		if d.null[i] {
			out[k] = tUnknown
			continue
		}
		var ok bool
		if n.prefix {
			ok = strings.HasPrefix(d.str[i], n.s)
		} else {
			ok = strings.HasSuffix(d.str[i], n.s)
		}
		out[k] = triOf(ok == n.want)
	}
}

// keyNode is "entityId eq 'x'" or "ne": a lookup, not a string compare
// per entity.
type keyNode struct {
	index int // of the entity with that ID; -1 if there is none
	eq    bool
}

func (n keyNode) evalVec(_ *Table, idx []int32, out []tri) {
	for k, i := range idx {
		out[k] = triOf((int(i) == n.index) == n.eq)
	}
}

// inNode is "entityId in (…)".
type inNode struct{ ids map[string]bool }

func (n inNode) evalVec(t *Table, idx []int32, out []tri) {
	for k, i := range idx {
		out[k] = triOf(n.ids[t.ID(int(i))])
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// Filter grammar (OData v2, as the SDS docs use it; keywords in any case):
//
//	or      = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | primary
//	primary = "(" or ")" | wildcard [ "eq" bool ] | entityId "in" "(" id { "," id } ")"
//	        | operand op operand      (one property and one literal)
type filterParser struct {
	t     *Table
	toks  []token
	pos   int
	depth int
	wild  int // wildcard functions seen
	bin   int // and/or seen
}

// parseFilter parses $filter against t's columns and types.
func parseFilter(t *Table, s string) (node, error) {
	if len(s) > MaxFilterLen {
		return nil, badRequest("$filter is longer than %d characters.", MaxFilterLen)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{t: t, toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if tk := p.peek(); tk.kind != tkEOF {
		return nil, badRequest("$filter: unexpected %q at character %d.", clip(tk.text), tk.at+1)
	}
	if p.wild > 1 {
		return nil, badRequest("$filter: only one StartsWith or EndsWith wildcard search is allowed per query.")
	}
	if p.wild == 1 && p.bin > 0 {
		return nil, badRequest("$filter: a StartsWith or EndsWith wildcard search cannot be combined with other $filter expressions (and, or).")
	}
	return n, nil
}

func (p *filterParser) peek() token { return p.toks[p.pos] }

func (p *filterParser) next() token {
	tk := p.toks[p.pos]
	if tk.kind != tkEOF {
		p.pos++
	}
	return tk
}

func (p *filterParser) keyword(k string) bool {
	tk := p.peek()
	if tk.kind == tkIdent && strings.EqualFold(tk.text, k) {
		p.pos++
		return true
	}
	return false
}

func (p *filterParser) enter() error {
	if p.depth++; p.depth > MaxDepth {
		return badRequest("$filter is nested more than %d levels deep.", MaxDepth)
	}
	return nil
}

func (p *filterParser) or() (node, error) {
	return p.chain("or", p.and, func(l, r node) node { return orNode{l, r} })
}

func (p *filterParser) and() (node, error) {
	return p.chain("and", p.unary, func(l, r node) node { return andNode{l, r} })
}

// chain reads operands joined by a left-associative keyword.
func (p *filterParser) chain(keyword string, operand func() (node, error), join func(l, r node) node) (node, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for p.keyword(keyword) {
		p.bin++
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = join(l, r)
	}
	return l, nil
}

func (p *filterParser) unary() (node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	// "not" is a keyword only before something it can negate; a column
	// may be called Not.
	if tk := p.peek(); tk.kind == tkIdent && strings.EqualFold(tk.text, "not") && !p.isOpAt(p.pos+1) {
		p.pos++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.primary()
}

func (p *filterParser) isOpAt(i int) bool {
	tk := p.toks[i]
	if tk.kind != tkIdent {
		return false
	}
	_, ok := ops[strings.ToLower(tk.text)]
	return ok || strings.EqualFold(tk.text, "in")
}

func (p *filterParser) primary() (node, error) {
	tk := p.peek()
	switch {
	case tk.kind == tkLParen:
		p.pos++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next().kind != tkRParen {
			return nil, badRequest("$filter: a parenthesis opened at character %d is not closed.", tk.at+1)
		}
		return n, nil
	case tk.kind == tkIdent && p.toks[p.pos+1].kind == tkLParen &&
		(strings.EqualFold(tk.text, "startswith") || strings.EqualFold(tk.text, "endswith")):
		return p.wildcard()
	case tk.kind == tkEOF:
		return nil, badRequest("$filter ends where an expression was expected.")
	}
	left := p.next()
	if p.keyword("in") {
		return p.in(left)
	}
	opTok := p.next()
	o, ok := ops[strings.ToLower(opTok.text)]
	if opTok.kind != tkIdent || !ok {
		return nil, badRequest("$filter: expected eq, ne, gt, ge, lt, le or in after %q, found %q.", clip(left.text), clip(opTok.text))
	}
	right := p.next()
	if right.kind == tkEOF {
		return nil, badRequest("$filter ends where a value was expected.")
	}
	switch {
	case left.kind == tkIdent && !isLiteralIdent(left.text):
		return p.compare(left, o, right)
	case right.kind == tkIdent && !isLiteralIdent(right.text):
		return p.compare(right, o.flip(), left)
	}
	return nil, badRequest("$filter: the comparison at character %d needs a property on one side.", left.at+1)
}

func isLiteralIdent(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "null":
		return true
	}
	return false
}

// column resolves a property name of $filter. entityId names the entity
// ID property whatever the schema calls it.
func (p *filterParser) column(tk token) (int, error) {
	c := p.t.Column(tk.text)
	if c < 0 && strings.EqualFold(tk.text, "entityId") {
		c = p.t.key
	}
	if c < 0 {
		return 0, badRequest("$filter names %q, which is not a property of %s.", clip(tk.text), p.t.EntityType)
	}
	if c == p.t.lat || c == p.t.lon {
		return 0, badRequest("$filter cannot use Latitude or Longitude: use a spatialFilter.")
	}
	if p.t.Columns[c].Type == dataset.Geography {
		return 0, badRequest("$filter cannot use the geography property %s: use a spatialFilter.", p.t.Columns[c].Name)
	}
	return c, nil
}

func (p *filterParser) compare(prop token, o op, lit token) (node, error) {
	c, err := p.column(prop)
	if err != nil {
		return nil, err
	}
	col := p.t.Columns[c]
	if lit.kind == tkIdent && strings.EqualFold(lit.text, "null") {
		if o != opEq && o != opNe {
			return nil, badRequest("$filter: null can be compared only with eq or ne.")
		}
		return nullNode{col: c, want: o == opEq}, nil
	}
	wrong := func() error {
		return badRequest("$filter: %s is %s; %q is not a value of that type.", col.Name, col.Type.EDM(), clip(lit.text))
	}
	n := cmpNode{col: c, op: o}
	switch col.Type {
	case dataset.String:
		if lit.kind != tkString {
			return nil, wrong()
		}
		n.lit.Str = lit.text
		if c == p.t.key && (o == opEq || o == opNe) {
			i, ok := p.t.Lookup(lit.text)
			if !ok {
				i = -1
			}
			return keyNode{index: i, eq: o == opEq}, nil
		}
	case dataset.Long:
		if lit.kind != tkNumber {
			return nil, wrong()
		}
		if i, err := strconv.ParseInt(lit.text, 10, 64); err == nil {
			n.lit.Int = i
		} else if f, err := strconv.ParseFloat(lit.text, 64); err == nil && finite(f) {
			n.lit.Num, n.num = f, true
		} else {
			return nil, wrong()
		}
	case dataset.Double:
		f, err := strconv.ParseFloat(lit.text, 64)
		if lit.kind != tkNumber || err != nil || !finite(f) {
			return nil, wrong()
		}
		n.lit.Num = f
	case dataset.Boolean:
		switch {
		case lit.kind == tkNumber && lit.text == "1", lit.kind == tkIdent && strings.EqualFold(lit.text, "true"):
			n.lit.Bool = true
		case lit.kind == tkNumber && lit.text == "0", lit.kind == tkIdent && strings.EqualFold(lit.text, "false"):
		default:
			return nil, wrong()
		}
	case dataset.DateTime:
		if lit.kind != tkString && lit.kind != tkDateTime {
			return nil, wrong()
		}
		tm, ok := parseTime(lit.text)
		if !ok {
			return nil, wrong()
		}
		n.lit.Time = tm
	}
	return n, nil
}

// parseTime reads a date literal: xs:dateTime with or without a zone
// (UTC without one, as the archive's dates are), or a bare date.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// wildcard reads StartsWith(prop,'s') or EndsWith(prop,'s'), with an
// optional "eq true" or "eq false".
func (p *filterParser) wildcard() (node, error) {
	fn := p.next()
	p.next() // (
	prop := p.next()
	if prop.kind != tkIdent {
		return nil, badRequest("$filter: %s needs a property name first.", fn.text)
	}
	c, err := p.column(prop)
	if err != nil {
		return nil, err
	}
	if p.t.Columns[c].Type != dataset.String {
		return nil, badRequest("$filter: %s works on text; %s is %s.", fn.text, p.t.Columns[c].Name, p.t.Columns[c].Type.EDM())
	}
	if p.next().kind != tkComma {
		return nil, badRequest("$filter: %s takes a property and a quoted string.", fn.text)
	}
	s := p.next()
	if s.kind != tkString || p.next().kind != tkRParen {
		return nil, badRequest("$filter: %s takes a property and a quoted string.", fn.text)
	}
	p.wild++
	n := wildNode{col: c, prefix: strings.EqualFold(fn.text, "startswith"), s: s.text, want: true}
	if p.keyword("eq") {
		b := p.next()
		switch {
		case b.kind == tkIdent && strings.EqualFold(b.text, "true"), b.kind == tkNumber && b.text == "1":
		case b.kind == tkIdent && strings.EqualFold(b.text, "false"), b.kind == tkNumber && b.text == "0":
			n.want = false
		default:
			return nil, badRequest("$filter: %s(…) can be compared only with eq true or eq false.", fn.text)
		}
	}
	return n, nil
}

// in reads "entityId in ('a','b',…)".
func (p *filterParser) in(left token) (node, error) {
	if left.kind != tkIdent || p.t.Column(left.text) != p.t.key && !strings.EqualFold(left.text, "entityId") {
		return nil, badRequest("$filter: in works only on the entity ID (entityId in (…)).")
	}
	if p.next().kind != tkLParen {
		return nil, badRequest("$filter: entityId in needs a list in parentheses.")
	}
	ids := map[string]bool{}
	for n := 0; ; n++ {
		v := p.next()
		if v.kind != tkString && v.kind != tkNumber && v.kind != tkIdent {
			return nil, badRequest("$filter: entityId in (…) holds entity IDs separated by commas.")
		}
		if n == MaxIDs {
			return nil, badRequest("$filter: entityId in (…) takes at most %d entity IDs.", MaxIDs)
		}
		ids[v.text] = true
		switch p.next().kind {
		case tkComma:
			continue
		case tkRParen:
			return inNode{ids: ids}, nil
		}
		return nil, badRequest("$filter: entityId in (…) holds entity IDs separated by commas and ends with ).")
	}
}

type tokKind uint8

const (
	tkEOF tokKind = iota
	tkIdent
	tkString
	tkNumber
	tkDateTime
	tkLParen
	tkRParen
	tkComma
)

type token struct {
	kind tokKind
	text string // a string's value without quotes
	at   int
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tkLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tkRParen, ")", i})
			i++
		case c == ',':
			toks = append(toks, token{tkComma, ",", i})
			i++
		case c == '\'':
			v, n, err := quoted(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tkString, v, i})
			i = n
		case c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			// OData suffixes: 10L, 1.5d, 1.5m, 1.5f
			if j < len(s) && strings.IndexByte("LlDdMmFf", s[j]) >= 0 && (j+1 == len(s) || !isIdentByte(s[j+1])) {
				toks = append(toks, token{tkNumber, s[i:j], i})
				i = j + 1
				continue
			}
			if _, err := strconv.ParseFloat(s[i:j], 64); err != nil {
				return nil, badRequest("$filter: %q at character %d is not a number.", clip(s[i:j]), i+1)
			}
			toks = append(toks, token{tkNumber, s[i:j], i})
			i = j
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			word := s[i:j]
			if strings.EqualFold(word, "datetime") && j < len(s) && s[j] == '\'' {
				v, n, err := quoted(s, j)
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{tkDateTime, v, i})
				i = n
				continue
			}
			toks = append(toks, token{tkIdent, word, i})
			i = j
		default:
			return nil, badRequest("$filter: unexpected %q at character %d.", string(c), i+1)
		}
	}
	return append(toks, token{tkEOF, "end of $filter", len(s)}), nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// quoted reads an OData string at s[i] (” is a quote inside it) and
// returns its value and the index after it.
func quoted(s string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		if s[j] != '\'' {
			b.WriteByte(s[j])
			continue
		}
		if j+1 < len(s) && s[j+1] == '\'' {
			b.WriteByte('\'')
			j++
			continue
		}
		return b.String(), j + 1, nil
	}
	return "", 0, badRequest("$filter: the string starting at character %d has no closing quote.", i+1)
}
