package wkt

import (
	"math"
	"math/rand/v2"
	"strconv"
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

func BenchmarkNumber(b *testing.B) {
	t := []byte("-122.123456 47.654321")
	for b.Loop() {
		number(t, 0)
		number(t, 12)
	}
}
