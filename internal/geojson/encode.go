package geojson

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/wkt"
)

// maxSafeInt is the largest integer a JSON reader holding numbers as
// IEEE doubles (JavaScript, most GIS) keeps exactly: 2^53 − 1.
const maxSafeInt = 1<<53 - 1

// appendValue appends a property value typed from its column.
func appendValue(b []byte, v dataset.Value) []byte {
	switch v.Type {
	case dataset.Long:
		return appendLong(b, v)
	case dataset.Double:
		f, err := v.Double()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return appendString(b, v.Raw)
		}
		return wkt.AppendFloat(b, f)
	case dataset.Boolean:
		t, err := v.Bool()
		if err != nil {
			return appendString(b, v.Raw)
		}
		return strconv.AppendBool(b, t)
	case dataset.DateTime:
		t, err := v.Time()
		if err != nil {
			return appendString(b, v.Raw)
		}
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	return appendString(b, v.Raw)
}

// appendLong appends an xs:long as a number when a double holds it
// exactly, else as a string of its digits.
func appendLong(b []byte, v dataset.Value) []byte {
	n, err := v.Long()
	switch {
	case err != nil:
		return appendString(b, v.Raw)
	case n < -maxSafeInt || n > maxSafeInt:
		b = append(b, '"')
		b = strconv.AppendInt(b, n, 10)
		return append(b, '"')
	}
	return strconv.AppendInt(b, n, 10)
}

// appendString appends s, valid UTF-8, as a JSON string.
func appendString(b []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for {
		i := plainRun(s)
		b = append(b, s[:i]...)
		if i == len(s) {
			return append(b, '"')
		}
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		s = s[i+1:]
	}
}

// plainRun returns the length of the run of bytes at the start of s that
// a JSON string holds as they are: all but control characters, '"' and
// '\\'. Text is mostly such bytes, so it tests eight at a time.
func plainRun(s []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		q, bs := x^('"'*ones), x^('\\'*ones)
		// A byte below 0x20, or one the XOR made zero, leaves its high bit
		// set here (bytes from 0x80 on, UTF-8 beyond ASCII, never do); a
		// borrow may set it in a later byte too: the test below finds the
		// first byte to escape.
		if ((x-0x20*ones)|(q-ones)|(bs-ones))&^x&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return len(s)
}
