package dataset

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Record is one entity: a value, present or omitted, for each column of
// the schema. A Reader reuses it: it is valid until the next call of Next.
type Record struct {
	schema *Schema
	vals   [][]byte
	set    []bool
	err    error // the first fault of the entity, with RecordErrors
}

// Err returns, for a Reader with the RecordErrors option, the first fault
// of the entity that left a field out of the record; nil otherwise.
func (r *Record) Err() error { return r.err }

// Schema returns the schema the record follows.
func (r *Record) Schema() *Schema { return r.schema }

// Value returns the value of column i.
func (r *Record) Value(i int) Value {
	if !r.set[i] {
		return Value{Type: r.schema.Columns[i].Type}
	}
	return Value{Type: r.schema.Columns[i].Type, Raw: r.vals[i], Present: true}
}

// Value is one field of an entity. Raw is its text with entity references
// resolved and CDATA sections unwrapped; it is valid until the record is
// reused. An omitted field is not Present; <Name/> is present and empty.
type Value struct {
	Type    Type
	Raw     []byte
	Present bool
}

// Text returns the value as written.
func (v Value) Text() string { return string(v.Raw) }

// XML Schema's numbers, booleans and dates allow surrounding whitespace.
func (v Value) trimmed() string { return string(bytes.TrimSpace(v.Raw)) }

// Long parses an xs:long.
func (v Value) Long() (int64, error) {
	n, err := strconv.ParseInt(v.trimmed(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an xs:long: %q", clip(v.Text()))
	}
	return n, nil
}

// Double parses an xs:double; INF, -INF and NaN are doubles too.
func (v Value) Double() (float64, error) {
	s := v.trimmed()
	switch s {
	case "INF", "+INF":
		s = "+Inf"
	case "-INF":
		s = "-Inf"
	case "NaN":
	default:
		// strconv also takes "inf", "Infinity", hex and underscores, which xs:double does not.
		for i := 0; i < len(s); i++ {
			if b := s[i]; !(b >= '0' && b <= '9' || b == '.' || b == 'e' || b == 'E' || b == '+' || b == '-') {
				return 0, fmt.Errorf("not an xs:double: %q", clip(v.Text()))
			}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("not an xs:double: %q", clip(v.Text()))
	}
	return f, nil
}

// Bool parses an xs:boolean: true, false, 1 or 0.
func (v Value) Bool() (bool, error) {
	switch v.trimmed() {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("not an xs:boolean: %q", clip(v.Text()))
}

// Time parses an xs:dateTime. SDS writes UTC (msdata:DateTimeMode="Utc"),
// so a time without a zone is taken as UTC.
func (v Value) Time() (time.Time, error) {
	s := v.trimmed()
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("not an xs:dateTime: %q", clip(v.Text()))
}
