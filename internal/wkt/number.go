package wkt

import (
	"math"
	"strconv"
)

// AppendFloat appends f as a JSON number, formatted like encoding/json:
// plain decimals, exponents only for very large or small magnitudes.
// f must be finite.
func AppendFloat(b []byte, f float64) []byte {
	if b, ok := appendMicros(b, f); ok {
		return b
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendMicros is a fast path of AppendFloat for the common coordinate
// of at most six decimals: when f is the double nearest to n/10^6 for an
// integer n (division of exact operands is correctly rounded), the digits
// of n with the point put back read back as f exactly.
func appendMicros(b []byte, f float64) ([]byte, bool) {
	n := math.Round(f * 1e6)
	if n/1e6 != f || math.Abs(n) >= 1e15 || n == 0 {
		return b, false
	}
	i := int64(n)
	if i < 0 {
		b = append(b, '-')
		i = -i
	}
	b = strconv.AppendInt(b, i/1e6, 10)
	frac := i % 1e6
	if frac == 0 {
		return b, true
	}
	var d [7]byte
	d[0] = '.'
	for k := 6; k > 0; k-- {
		d[k] = byte('0' + frac%10)
		frac /= 10
	}
	end := 7
	for d[end-1] == '0' {
		end--
	}
	return append(b, d[:end]...), true
}

// pow10 holds the powers of ten a double holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// digitRun appends the decimal digits at t[p:] to mant, returning it
// and where they end. mant may wrap: more than 19 digits are strconv's.
func digitRun(t []byte, p int, mant uint64) (uint64, int) {
	for ; p < len(t); p++ {
		d := t[p] - '0'
		if d > 9 {
			break
		}
		mant = mant*10 + uint64(d)
	}
	return mant, p
}

// maxVerbatim is the longest number copied into GeoJSON as written.
const maxVerbatim = 24

// number reads the number at t[p:] of the form
// -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?, returning its value (the double
// strconv.ParseFloat gives), where it ends, and whether its text is
// also a JSON number to copy as it is. ok is false when there is no such
// number or strconv refuses it (out of range).
func number(t []byte, p int) (f float64, end int, verbatim, ok bool) {
	start := p
	neg := p < len(t) && t[p] == '-'
	if neg {
		p++
	}
	// Every digit goes into mant; more than 19 of them, which may not
	// fit, take strconv's path.
	intStart := p
	mant, p := digitRun(t, p, 0)
	digits := p - intStart
	if digits == 0 {
		return 0, p, false, false
	}
	// JSON forbids leading zeros.
	verbatim = t[intStart] != '0' || digits == 1
	exp := 0
	if p < len(t) && t[p] == '.' {
		p++
		fracStart := p
		if mant, p = digitRun(t, p, mant); p == fracStart {
			return 0, p, false, false
		}
		exp = fracStart - p
		digits += p - fracStart
	}
	if p < len(t) && (t[p] == 'e' || t[p] == 'E') {
		p++
		eneg := false
		if p < len(t) && (t[p] == '+' || t[p] == '-') {
			eneg = t[p] == '-'
			p++
		}
		expStart, e := p, 0
		for ; p < len(t) && '0' <= t[p] && t[p] <= '9'; p++ {
			if e < 100_000 {
				e = e*10 + int(t[p]-'0')
			}
		}
		if p == expStart {
			return 0, p, false, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	verbatim = verbatim && p-start <= maxVerbatim
	// Clinger's fast path: mantissa and power of ten both exact doubles,
	// so one correctly rounded operation gives the nearest double.
	if digits <= 19 && mant <= 1<<53 && exp >= -22 && exp <= 22 {
		f = float64(mant)
		if exp > 0 {
			f *= pow10[exp]
		} else if exp < 0 {
			f /= pow10[-exp]
		}
		if neg {
			f = -f
		}
		return f, p, verbatim, true
	}
	f, err := strconv.ParseFloat(string(t[start:p]), 64)
	return f, p, verbatim, err == nil
}
