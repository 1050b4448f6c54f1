package wkt

import (
	"encoding/binary"
	"math"
	"math/bits"
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
//
// It reads the form coordinates take, (-[0-9]{1,6}|[0-9]{1,7})(\.[0-9]{1,8})?
// followed by something other than a digit, '.', 'e' or 'E', within 16
// bytes that the text holds, itself: it finds the ends by bit tricks on
// two 8-byte words and converts the digits with multiply-shifts, with
// no branch per digit and few operations between a number's start and
// the next's. anyNumber reads every other text.
func number(t []byte, p int) (f float64, end int, verbatim, ok bool) {
	if p+16 > len(t) {
		return anyNumber(t, p)
	}
	s := (*[16]byte)(t[p:])
	w0, w1 := binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:])
	d0 := w0 ^ 0x3030303030303030 // bytes minus '0'
	stop0, stop1 := nonDigits(d0), nonDigits(w1^0x3030303030303030)
	var sign uint64      // all ones in the sign's byte
	if byte(w0) == '-' { // not s[0]: it would keep w0 from being one load
		sign = 0xff
	}
	if stop0 &^= sign; stop0 == 0 {
		return anyNumber(t, p) // eight digits or more
	}
	first := int(sign & 1)
	dot := bits.TrailingZeros64(stop0) >> 3 // 0 to 7: where the integer digits end
	ni := dot - first
	if ni <= 0 {
		return anyNumber(t, p)
	}
	// The integer digits moved to the top, the sign's byte made a zero.
	mant := eightDigits((d0 &^ sign) << ((64 - 8*dot) & 63))
	nf := 0
	end = dot
	if byte(w0>>(8*dot&63)) == '.' {
		if more := stop0 & (stop0 - 1); more != 0 {
			end = bits.TrailingZeros64(more) >> 3
		} else if stop1 != 0 {
			end = 8 + bits.TrailingZeros64(stop1)>>3
		} else {
			return anyNumber(t, p)
		}
		if nf = end - dot - 1; nf == 0 || nf > 8 {
			return anyNumber(t, p) // no fraction digits, or too many
		}
		mant = mant*pow10u[nf] + eightDigits(digitValues(s[dot+1:])<<((64-8*nf)&63))
	}
	if c := s[end&15] | 0x20; c == 'e' || c == '.' {
		return anyNumber(t, p)
	}
	// At most 15 digits and a fraction of at most 8: mantissa and power
	// of ten both exact, and one correctly rounded division, as in
	// anyNumber's fast path.
	f = float64(mant) / pow10[nf]
	if sign != 0 {
		f = -f
	}
	return f, p + end, s[first] != '0' || ni == 1, true
}

// anyNumber is number for any form.
func anyNumber(t []byte, p int) (f float64, end int, verbatim, ok bool) {
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

// nonDigits marks with its high bit each byte of d, text minus '0' a
// byte (the first in the low byte), that was not a decimal digit, and
// maybe bytes after such a one: the lowest bit set marks where a run of
// digits from the first ends.
func nonDigits(d uint64) uint64 {
	// A digit is now below 10, and adding 0x76 sets the high bit of any
	// byte that is not. Subtracting '0' by xor left no borrows, as no
	// digit has those bits set; carries out of a byte (one of 0x8a or
	// more) run towards later bytes.
	return ((d + 0x7676767676767676) | d) & 0x8080808080808080
}

// digitValues is the first eight bytes of s minus '0' each.
func digitValues(s []byte) uint64 {
	return binary.LittleEndian.Uint64(s) ^ 0x3030303030303030
}

// pow10u holds the powers of ten up to 10^8 as integers.
var pow10u = [9]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// eightDigits is the value of the eight decimal digits in d, one a byte
// (0 to 9), the first in the low byte: three multiply-shifts, each
// joining neighbouring pairs.
func eightDigits(d uint64) uint64 {
	d = (d * (1 + 10<<8)) >> 8 & 0x00ff00ff00ff00ff
	d = (d * (1 + 100<<16)) >> 16 & 0x0000ffff0000ffff
	return (d * (1 + 10000<<32)) >> 32
}
