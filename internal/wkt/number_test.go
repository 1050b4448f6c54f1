package wkt

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestAppendFloat: numbers read back as the same double, and look like
// encoding/json's.
func TestAppendFloat(t *testing.T) {
	tenth := 0.1 // a variable: constant arithmetic would be exact
	for _, tc := range []struct {
		f    float64
		want string
	}{{0, "0"}, {-122.1, "-122.1"}, {47.673302, "47.673302"}, {1e-7, "1e-07"}, {0.000001, "0.000001"},
		{-0.5, "-0.5"}, {1e21, "1e+21"}, {123456789.123, "123456789.123"}, {tenth + 0.2, "0.30000000000000004"},
		{math.Copysign(0, -1), "-0"}, {1e15, "1000000000000000"}, {9.87443416667, "9.87443416667"}} {
		if got := string(AppendFloat(nil, tc.f)); got != tc.want {
			t.Errorf("AppendFloat(%v) = %s, want %s", tc.f, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		f := (rng.Float64() - 0.5) * 360
		if rng.IntN(2) == 0 {
			f = math.Round(f*1e6) / 1e6
		}
		s := AppendFloat(nil, f)
		if back, err := strconv.ParseFloat(string(s), 64); err != nil || back != f {
			t.Fatalf("%v written as %s reads back as %v, %v", f, s, back, err)
		}
	}
}

// numberForm is the grammar number reads.
var numberForm = regexp.MustCompile(`^-?([0-9]+)(\.[0-9]+)?([eE][+-]?[0-9]+)?`)

// numberSeeds are numbers of every length about eight and sixteen bytes,
// where number's 8-byte steps change, and forms next to the grammar's.
var numberSeeds = []string{"0", "-0", "-0.0", "5", "-122.123456 47.654321, ", "47.654321)", "12345678", "1234567.8",
	"-1234567.12345678 ", "-12345678.1", "0.12345678 ", "0.123456789 ", "-1.12345678", "1.1234567812345678 1",
	"007.5 ", "00 ", "0.5e3 ", "-12.5E-3 ", "1.5e+3 ", "1e ", "1.e5 ", "1..5 ", "1.5.5           ", ".5 ", "5. ", "+5 ",
	"--5 ", "-.5 ", "- 5", "1.2345678e1234567", "123456789012345678901234567890 ", "1\xfa2345678901234567",
	"1.23\xff45678901234567", "12\x00.4567890123456", "9007199254740993.5 ", "1e400 ", "1e-400 "}

// FuzzNumber: number reads the longest prefix of the grammar, gives
// strconv's double for it, bit for bit, and copies it into GeoJSON only
// when it is JSON without leading zeros, as the output has always been.
func FuzzNumber(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s, 0)
		f.Add(s+strings.Repeat(" ", 16), 0)
		f.Add("(1 "+s+", 2 3))", 3)
	}
	f.Fuzz(func(t *testing.T, text string, p int) {
		if p < 0 || p > len(text) {
			return
		}
		got, end, verbatim, ok := number([]byte(text), p)
		m := numberForm.FindStringSubmatchIndex(text[p:])
		if m == nil {
			if ok {
				t.Fatalf("number(%q, %d) read %v, not of the grammar", text, p, got)
			}
			return
		}
		s := text[p : p+m[1]]
		want, err := strconv.ParseFloat(s, 64)
		if rest := text[p+m[1]:]; rest != "" && m[6] < 0 && (rest[0]|0x20 == 'e' || rest[0] == '.' && m[4] < 0) {
			err = strconv.ErrSyntax // a point or exponent without digits
		}
		if ok != (err == nil) {
			t.Fatalf("number(%q, %d): ok %v, strconv's error %v", text, p, ok, err)
		}
		if !ok {
			return
		}
		if end != p+m[1] || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("number(%q, %d) = %v ending at %d; strconv %v of %q", text, p, got, end, want, s)
		}
		intDigits := text[p+m[2] : p+m[3]]
		wantVerbatim := (intDigits[0] != '0' || len(intDigits) == 1) && len(s) <= maxVerbatim
		if verbatim != wantVerbatim || verbatim && !json.Valid([]byte(s)) {
			t.Fatalf("number(%q, %d): copied %v, want %v", text, p, verbatim, wantVerbatim)
		}
	})
}

// BenchmarkNumber reads a position's two numbers, as within a run.
func BenchmarkNumber(b *testing.B) {
	t := []byte("-122.123456 47.654321, -122.123457 47.65432)")
	for b.Loop() {
		number(t, 0)
		number(t, 12)
	}
}
