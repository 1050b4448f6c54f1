package geojson

import (
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
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
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
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
