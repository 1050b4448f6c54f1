package query

import (
	"errors"
	"testing"

	"github.com/sdsops/sdsops/internal/query/querytest"
)

// Whatever the query string, parsing and running it ends in an answer or
// a 4xx *Error: never a panic, never another error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"spatialFilter=nearby(40.8,-74.3,5)&$filter=IsWifiHotSpot%20eq%201&$select=DisplayName,__Distance&$top=3",
		"spatialFilter=bbox(40.78,-74.47,40.89,-74.16)&$orderby=IsWiFiHotSpot,Open%20desc&$skip=2",
		"SpatialFilter=intersects('POLYGON((-112 42,-112 41,-123 41,-123 42,-112 42))'&$select=intersection('POLYGON((-112 42,-112 41,-123 41,-123 42,-112 42))'),EntityID",
		"$filter=entityId%20in%20('-22067','-7891')",
		"$filter=StartsWith(PrimaryCity,'Clear')%20eq%20true",
		"$filter=not%20(Open%20gt%20600%20or%20CreatedDate%20lt%20datetime'2010-11-03')%20and%20SeatingCapacity%20eq%20null",
		"jsonp=cb&jsonso=x&$format=json&$inlinecount=allpages&isStaging=1",
	} {
		f.Add(s)
	}
	coffee := load(f, querytest.CoffeeShops())
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParseParams(raw)
		if err == nil {
			_, err = ParseRequest(p)
		}
		var q *Query
		if err == nil {
			q, err = Parse(coffee, p)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 {
				t.Fatalf("%q: %v is not a 4xx *Error", raw, err)
			}
			return
		}
		res := coffee.Run(q)
		if len(res.Rows) > q.Top || res.Count > coffee.Len() {
			t.Fatalf("%q: %d rows of %d", raw, len(res.Rows), res.Count)
		}
		for _, r := range res.Rows {
			q.Project(coffee, r)
		}
	})
}
