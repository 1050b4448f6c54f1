package wkt

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// seeds are WKT texts of every type and form, valid and not.
var seeds = []string{
	"POINT (-122.1 47.6)", "POINT(1 2)", "point ( 1 2 )", "POINT EMPTY", " POINT EMPTY ", "Point Empty",
	"LINESTRING (1 2, 3 4)", "LINESTRING(1 2,3 4 , 5 6)", "LINESTRING EMPTY", "LINESTRING (1 2)",
	"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 2 4, 4 4, 4 2, 2 2))",
	"POLYGON((0 0,0 10,10 10,10 0,0 0),(2 2,4 2,4 4,2 4,2 2))", "POLYGON EMPTY", "POLYGON ((0 0, 1 1, 0 0))",
	"POLYGON ((0 0, 1 0, 1 1, 0 1))", "POLYGON ((0 0, 1 0, 2 0, 0 0))",
	"MULTIPOINT ((1 2), (3 4))", "MULTIPOINT(1 2, 3 4)", "MULTIPOINT EMPTY", "MULTIPOINT ( ( 1 2 ) , ( 3 4 ) )",
	"MULTILINESTRING ((1 2, 3 4), (5 6, 7 8))", "MULTILINESTRING EMPTY", "MULTILINESTRING ((1 2), (3 4, 5 6))",
	"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 5 6, 6 6, 5 5), (5.1 5.2, 5.2 5.3, 5.1 5.3, 5.1 5.2)))",
	"MULTIPOLYGON(((0 0,1 0,1 1,0 0)) , ((5 5,6 6,5 6,5 5)))", "MULTIPOLYGON EMPTY",
	"GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (1 2, 3 4))", "GEOMETRYCOLLECTION EMPTY",
	"GEOMETRYCOLLECTION (LINESTRING EMPTY, POLYGON EMPTY)", "GEOMETRYCOLLECTION (POINT EMPTY)",
	"GEOMETRYCOLLECTION (GEOMETRYCOLLECTION (MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))), POINT (3 4))",
	"POINT (1e2 -2.5E-3)", "POINT (-0 0)", "POINT (+1 2)", "POINT (.5 1.)", "POINT (007 1)", "POINT (1e400 2)",
	"POINT (0e400 2)", "POINT (1e-400 2)", "POINT (0x1p-2 1)", "POINT (NaN 1)", "POINT (inf 1)",
	"POINT (180.0000000000000000000001 90)", "POINT (12345678901234567890123 1)", "POINT (0.1234567890123456789012345 1)",
	"POINT (200 10)", "POINT (1  2)", "POINT\t(1 2)", "POINT (1\t2)", " POINT (1 2)\n", "POINT (1 2 3)",
	"POINT (1 2", "POINT 1 2)", "POINT ((1 2))", "POINTS (1 2)", "LINESTRING ()", "LINESTRING (1 2,, 3 4)",
	"POLYGON ((0 0, 1 0, 1 1, 0 0)|,|(0 0, 1 0, 1 1, 0 0))", "GEOMETRYCOLLECTION ()", "GEOMETRYCOLLECTION",
	"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0))", "POLYGON ((0 0, 1 0, 1 1, 0 0)))", ")(", "", " ", "EMPTY",
	strings.Repeat("GEOMETRYCOLLECTION (", 31) + "POINT (1 2)" + strings.Repeat(")", 31),
	strings.Repeat("GEOMETRYCOLLECTION (", 32) + "POINT (1 2)" + strings.Repeat(")", 32),
	strings.Repeat("((", 40),
}

// FuzzConvert holds Converter to orb's reading of the same text: the
// same refusals, the same WKB bytes, GeoJSON of the same values, the same
// type, emptiness and bounding box.
func FuzzConvert(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	// Numbers about where number's 8-byte path gives way, with text
	// enough after them for it to be tried.
	for _, n := range []string{"-0", "-0.0", "12345678", "1234567.8", "-1234567.12345678", "0.12345678",
		"0.123456789", "-1.1234567812345678", "007.5", "0.5e3", "-12.5E-3", "+5", ".5", "5.", "-.5",
		"123456789012345678901234567890", "0.12345678901234567890123", "9007199254740993.5", "1e400", "-179.999999",
		"180.0000001", "-90.00000001"} {
		f.Add("LINESTRING (" + n + " 1.5, 2 3, 4 5, 6 7)")
		f.Add("POLYGON ((" + n + " 0, 1 0, 1 1, " + n + " 0))")
		f.Add("MULTIPOINT ((1 2), (" + n + " " + n + "), (3 4))")
	}
	var c Converter
	f.Fuzz(func(t *testing.T, text string) {
		gj, wkb, g, err := c.Convert([]byte(text), []byte("x"), []byte{9})
		wgj, wwkb, wg, werr := convertOrb(text, []byte("x"), []byte{9})
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, orb's %v", text, err, werr)
		}
		if err != nil {
			if !errors.Is(err, ErrNotWKT) && !errors.Is(werr, ErrNotWKT) {
				t.Fatalf("%q: error %v not ErrNotWKT", text, err)
			}
			if string(gj) != "x" || !bytes.Equal(wkb, []byte{9}) {
				t.Fatalf("%q refused, yet written: %s % x", text, gj, wkb)
			}
			return
		}
		if !bytes.Equal(wkb, wwkb) {
			t.Fatalf("%q: WKB\n% x\norb's\n% x", text, wkb, wwkb)
		}
		var got, want any
		if err := json.Unmarshal(gj[1:], &got); err != nil {
			t.Fatalf("%q: GeoJSON %s: %v", text, gj[1:], err)
		}
		if err := json.Unmarshal(wgj[1:], &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: GeoJSON\n%s\norb's\n%s", text, gj[1:], wgj[1:])
		}
		if g.Type != wg.Type || g.Empty != wg.Empty || g.HasBound != wg.HasBound ||
			(g.HasBound && (g.Bound.Min != wg.Bound.Min || g.Bound.Max != wg.Bound.Max)) {
			t.Fatalf("%q: %+v, orb's %+v", text, g, wg)
		}
	})
}

// TestFastForms: the forms SDS writes are read without orb, and allocate
// nothing once the buffers have grown.
func TestFastForms(t *testing.T) {
	var c Converter
	for _, s := range []string{"POINT (-122.1 47.6)", "POINT EMPTY", "LINESTRING (1 2, 3 4)", "LINESTRING EMPTY",
		"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 2 4, 4 4, 4 2, 2 2))", "POLYGON ((0 0, 0 1, 1 1, 0 0))",
		"MULTIPOINT ((1 2), (3 4))", "MULTILINESTRING ((1 2, 3 4), (5 6, 7 8))",
		"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 5 6, 6 6, 5 5)))",
		"GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (1 2, 3 4))", "GEOMETRYCOLLECTION EMPTY",
		"POINT (200 10)", "LINESTRING (1 2)", "POLYGON ((0 0, 1 0, 1 1, 0 1))"} {
		_, err := c.scan([]byte(s), nil, nil)
		if errors.Is(err, errOther) {
			t.Errorf("%q left to orb", s)
		}
	}
	text := []byte("POLYGON ((0 0, 0 10, 10 10, 10 0, 0 0), (2 2, 4 2, 4 4, 2 4, 2 2))")
	gj, wkb := make([]byte, 0, 1024), make([]byte, 0, 1024)
	c.Convert(text, gj, wkb)
	if n := testing.AllocsPerRun(100, func() { c.Convert(text, gj[:0], wkb[:0]) }); n != 0 {
		t.Errorf("%v allocations per text", n)
	}
}

// TestNumber: values are strconv's, bit for bit, and copied into GeoJSON
// only when JSON reads them.
func TestNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "47.673302", "-122.1", "9007199254740993", "1e22", "1e23",
		"123456789012345678901", "0.000001", "1e-7", "00.5", "1.5e+3", "4.9e-324", "1.7976931348623157e308",
		"0.1234567890123456789", "12345678901234567890"} {
		f, end, verbatim, ok := number([]byte(s), 0)
		want, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || end != len(s) || math.Float64bits(f) != math.Float64bits(want) {
			t.Errorf("number(%q) = %v, %d, %v; strconv %v, %v", s, f, end, ok, want, err)
		}
		if verbatim && !json.Valid([]byte(s)) {
			t.Errorf("%q copied, not JSON", s)
		}
	}
}

// BenchmarkConverter converts a polygon of 128 positions of six
// decimals, reporting MB of WKT per second.
func BenchmarkConverter(b *testing.B) { benchmarkPolygon(b, 1) }

// BenchmarkConverterClockwise converts the same polygon running
// clockwise, as half the export's do, so that its GeoJSON ring is
// written reversed.
func BenchmarkConverterClockwise(b *testing.B) { benchmarkPolygon(b, -1) }

func benchmarkPolygon(b *testing.B, direction float64) {
	var t strings.Builder
	t.WriteString("POLYGON ((")
	for k := range 128 {
		if k > 0 {
			t.WriteString(", ")
		}
		a := direction * 2 * math.Pi * float64(k%127) / 127
		t.WriteString(strconv.FormatFloat(math.Round((-122.5+0.5*math.Cos(a))*1e6)/1e6, 'f', -1, 64) + " " +
			strconv.FormatFloat(math.Round((47.5+0.5*math.Sin(a))*1e6)/1e6, 'f', -1, 64))
	}
	t.WriteString("))")
	text := []byte(t.String())
	var c Converter
	var gj, wkb []byte
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		var err error
		if gj, wkb, _, err = c.Convert(text, gj[:0], wkb[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
