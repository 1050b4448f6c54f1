package query

import (
	"math/rand/v2"
	"testing"

	"github.com/peterstace/simplefeatures/geom"
)

// The point fast path agrees with the general overlay test, holes,
// several polygons, lines and boundaries included.
func TestAreaFastPathMatchesOverlay(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, wkt := range []string{
		"POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (3 3, 7 3, 7 7, 3 7, 3 3))",
		"MULTIPOLYGON (((0 0, 4 0, 4 4, 0 4, 0 0)), ((6 6, 10 6, 8 10, 6 6)))",
		"POLYGON ((0 0, 10 0, 5 5, 10 10, 0 10, 0 0))",
		"LINESTRING (0 0, 5 5, 10 0)",
		"MULTIPOINT ((1 1), (5 5))",
	} {
		g, err := geom.UnmarshalWKT(wkt)
		if err != nil {
			t.Fatal(err)
		}
		a := prepareArea(g)
		for i := 0; i < 5000; i++ {
			// Whole and half coordinates land on vertices and edges often.
			x, y := float64(rng.IntN(25))/2-1, float64(rng.IntN(25))/2-1
			if i%2 == 0 {
				x, y = rng.Float64()*12-1, rng.Float64()*12-1
			}
			p := geom.NewPoint(geom.Coordinates{XY: geom.XY{X: x, Y: y}}).AsGeometry()
			if got, want := a.intersects(p), geom.Intersects(g, p); got != want {
				t.Errorf("%s and POINT (%g %g): fast path %v, overlay %v", wkt, x, y, got, want)
			}
		}
	}
}
