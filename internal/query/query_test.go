package query

import (
	"context"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/query/querytest"
)

func load(t testing.TB, export string) *Table {
	t.Helper()
	tb, err := DataSetLoader{}.Load(context.Background(), strings.NewReader(export))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// run parses a query string (as written in the docs, unencoded) and runs it.
func run(t *testing.T, tb *Table, raw string) ([]string, Result, *Query, error) {
	t.Helper()
	p, err := ParseParams(strings.ReplaceAll(raw, " ", "%20"))
	if err != nil {
		return nil, Result{}, nil, err
	}
	q, err := Parse(tb, p)
	if err != nil {
		return nil, Result{}, nil, err
	}
	res := tb.Run(q)
	ids := make([]string, len(res.Rows))
	for i, r := range res.Rows {
		ids[i] = tb.ID(r.Index)
	}
	return ids, res, q, nil
}

func TestDocsExamples(t *testing.T) {
	coffee := load(t, querytest.CoffeeShops())
	geoms := load(t, querytest.Geoms())
	for _, tc := range []struct {
		name, query string
		tb          *Table
		want        string
	}{
		{"bbox", "spatialFilter=bbox(40.7801465817126,-74.46958923339845,40.88535150706938,-74.163070678710937)&$select=EntityID,Latitude,Longitude&$top=3", coffee, "-7884 -7891 -7920"},
		{"nearby", "spatialFilter=nearby(40.83274904439099,-74.3163299560546935,5)&$select=EntityID,Latitude,Longitude,__Distance&$top=3", coffee, "-8051 -8174 -8181"},
		{"nearby empty $filter", "spatialFilter=nearby(40.83274904439099,-74.3163299560546935,5)&$filter&$select=EntityID,Latitude,Longitude,__Distance&$top=3&$format=json", coffee, "-8051 -8174 -8181"},
		{"boolean eq 1", "spatialFilter=nearby(40.83274904439099,-74.3163299560546935,5)&$filter=IsWifiHotSpot eq 1&$select=DisplayName,Latitude,Longitude&$top=3", coffee, "-8080 -8077 -8089"},
		{"orderby boolean true first", "spatialFilter=nearby(27.894007,-82.670776,2)&$filter=StoreType Eq 'Coffee Shop'&$select=IsWiFiHotSpot&$orderby=IsWiFiHotSpot", coffee, "-715 -661 -736 -685 -700"},
		{"wildcard", "spatialFilter=nearby(27.894007,-82.670776,10)&$filter=StartsWith(PrimaryCity,'Clear') eq true&$orderby=IsWheelchairAccessible&$select=DisplayName,IsWheelChairAccessible,Latitude,Longitude", coffee, "-661 -660 -666 -669 -710"},
		{"entityId in", "$filter=entityId in('-22067','-7891')&$select=Latitude,Longitude,AddressLine,PrimaryCity,PostalCode", coffee, "-22067 -7891"},
		{"intersects without closing parenthesis", "SpatialFilter=intersects('POLYGON((-112 42,-112 41,-123 41,-123 42,-112 42))'&$select=intersection('POLYGON((-112 42,-112 41,-123 41,-123 42,-112 42))'),EntityID&$top=2", geoms, "1001199368 1001503020"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, _, _, err := run(t, tc.tb, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ids, " "); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// The docs' Atom example distances fit the haversine on a 6378.137 km
// sphere to millimetres.
func TestDistanceMatchesDocs(t *testing.T) {
	for _, tc := range []struct {
		lat, lon, want float64
	}{
		{40.820685, -74.295683, 2.19734068236095},
		{40.849513, -74.292831, 2.72010344668636},
		{40.851404, -74.293720, 2.81746736218219},
	} {
		if d := haversine(40.83274904439099, -74.3163299560546935, tc.lat, tc.lon); math.Abs(d-tc.want) > 0.00001 {
			t.Errorf("distance to %v,%v = %.9f km, docs say %.9f", tc.lat, tc.lon, d, tc.want)
		}
	}
}

func TestIntersectionAndProjection(t *testing.T) {
	geoms := load(t, querytest.Geoms())
	_, res, q, err := run(t, geoms, "SpatialFilter=intersects('POLYGON((-112 42,-112 41,-123 41,-123 42,-112 42))')&$select=intersection('POLYGON((-112 42,-112 41,-123 41,-123 42,-112 42))'),EntityID")
	if err != nil {
		t.Fatal(err)
	}
	// The line, the polygon and the entity with only a point; not the
	// point geography east of the polygon nor the square far north.
	if res.Count != 3 {
		t.Fatalf("count %d, want 3", res.Count)
	}
	props := q.Project(geoms, res.Rows[0])
	if props[0].Name != "__IntersectedGeom" || !oneOf(props[0].Value.Str, "LINESTRING (-117.01828 41.00016, -117.01828 41)", "LINESTRING (-117.01828 41, -117.01828 41.00016)") || props[1].Name != "EntityID" {
		t.Errorf("first entity's properties: %+v", props)
	}
	props = q.Project(geoms, res.Rows[1])
	if !strings.HasPrefix(props[0].Value.Str, "POLYGON ((") {
		t.Errorf("second: %+v", props[0])
	}
}

func TestFilterSemantics(t *testing.T) {
	coffee := load(t, querytest.CoffeeShops())
	for _, tc := range []struct{ filter, want string }{
		{"Open eq 700", "-22067"},
		{"Open gt 600 or Open lt 600", "-22067"},
		{"not (Open eq 600)", "-22067"}, // stores without Open are unknown, not true
		{"SeatingCapacity eq null and StoreType eq 'Drive-Thru'", "-22067 -660"},
		{"SeatingCapacity ne null and PrimaryCity eq 'Belleville'", "-7891"},
		{"EndsWith(DisplayName,'Danmark')", "-22067"},
		{"EndsWith(DisplayName,'States') eq false", "-22067"},
		{"CreatedDate eq datetime'2010-11-03T00:00:00'", "-22067"},
		{"LastUpdatedDate gt '2010-11-03T23:31:36'", "-7884 -7891 -7920 -8051 -8077 -8080 -8089 -8090 -8174 -8181"},
		{"IsWiFiHotSpot eq true and not (PrimaryCity eq 'East Hanover')", "-715"},
		{"entityId in (-7891, '-22067') and IsWheelchairAccessible eq 0", "-22067"},
		{"PrimaryCity eq 'Clearwater' and IsWheelchairAccessible eq 1 and StoreType ne 'Drive-Thru'", "-661 -666"},
		{"Name eq 'Fourth Coffee Store #22067'", "-22067"},
		{"AddressLine eq 'Løven'", "-22067"},
		{"700 eq Open", "-22067"},
		{"Close ge 1800.0", "-22067"},
		{"Open lt 600.5 and Open gt 599", "-660 -661 -666 -669 -685 -700 -710 -715 -736"},
	} {
		ids, _, _, err := run(t, coffee, "$filter="+url.QueryEscape(tc.filter)+"&$top=250")
		if err != nil {
			t.Errorf("%s: %v", tc.filter, err)
			continue
		}
		if got := strings.Join(ids, " "); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.filter, got, tc.want)
		}
	}
}

func TestRefused(t *testing.T) {
	coffee := load(t, querytest.CoffeeShops())
	ids := make([]string, 51)
	for i := range ids {
		ids[i] = "'x'"
	}
	for _, tc := range []struct{ query, says string }{
		{"spatialFilter=nearby('1 Microsoft Way Redmond WA 98052',5)&$filter=IsWifiHotSpot eq 1&$select=*,__Distance", "geocoding"},
		{"spatialFilter=nearRoute('Webster,TX','Kemah,TX')&$select=EntityID", "routing"},
		{"spatialFilter=nearby(47.6,-122.3,1001)", "from 0.15 to 1000"},
		{"spatialFilter=nearby(47.6,-122.3,0.01)", "from 0.15 to 1000"},
		{"spatialFilter=nearby(NaN,-122.3,5)", "not a number"},
		{"spatialFilter=nearby(91,-122.3,5)", "latitude must be"},
		{"spatialFilter=bbox(47.7,-122.4,47.5,-122.2)", "south latitude"},
		{"spatialFilter=bbox(47.5,-122.4,47.7)", "takes 4 numbers"},
		{"spatialFilter=intersects('POLYGON((0 0,20 0,20 20,0 20,0 0))')", "10° of latitude"},
		{"spatialFilter=intersects('POLYGON((0 0,1 0,1 1')", "not valid WKT"},
		{"spatialFilter=intersects('LINESTRING(" + strings.Repeat("1 1,", 200) + "1 2)')", "at most 200"},
		{"spatialFilter=sphere(1,2,3)", "Unknown spatialFilter"},
		{"$select=EntityID", "spatialFilter (nearby, bbox or intersects) or a $filter is required"},
		{"$filter=Latitude gt 3", "Latitude or Longitude"},
		{"$filter=Nope eq 3", `"Nope", which is not a property`},
		{"$filter=Open eq 'seven'", "Edm.Int64"},
		{"$filter=PrimaryCity eq 7", "Edm.String"},
		{"$filter=IsWiFiHotSpot eq 2", "Edm.Boolean"},
		{"$filter=CreatedDate gt 'yesterday'", "Edm.DateTime"},
		{"$filter=(Open eq 1", "not closed"},
		{"$filter=Open eq 1)", "unexpected"},
		{"$filter=Open eq", "ends where a value"},
		{"$filter=Open eq 'x", "no closing quote"},
		{"$filter=" + strings.Repeat("not ", 10000) + "Open eq 1", "longer than 16384 bytes"},
		{"$filter=" + strings.Repeat("not ", 1000) + "Open eq 1", "nested more than"},
		{"$filter=" + strings.Repeat("(", 100) + "Open eq 1" + strings.Repeat(")", 100), "nested more than"},
		{"$filter=StartsWith(PrimaryCity,'C') and Open eq 1", "cannot be combined"},
		{"$filter=StartsWith(PrimaryCity,'C') or EndsWith(PrimaryCity,'r')", "only one"},
		{"$filter=StartsWith(Open,'C')", "works on text"},
		{"$filter=entityId in (" + strings.Join(ids, ",") + ")", "at most 50"},
		{"$filter=PrimaryCity in ('a')", "only on the entity ID"},
		{"$filter=Open eq 1&$top=100000", "at most 250"},
		{"$filter=Open eq 1&$top=-1", "whole number"},
		{"$filter=Open eq 1&$skip=x", "whole number"},
		{"$filter=Open eq 1&$orderby=A,B,C,D", "at most 3"},
		{"$filter=Open eq 1&$orderby=Latitude", "Latitude or Longitude"},
		{"$filter=Open eq 1&$orderby=__Distance", "nearby or bbox"},
		{"$filter=Open eq 1&$orderby=Open sideways", "asc or desc"},
		{"$filter=Open eq 1&$select=__Distance", "nearby or bbox"},
		{"$filter=Open eq 1&$select=Nope", "not a property"},
		{"$filter=Open eq 1&$inlinecount=some", "allpages or none"},
	} {
		_, _, _, err := run(t, coffee, tc.query)
		e, ok := err.(*Error)
		if !ok || e.Status != 400 || !strings.Contains(e.Msg, tc.says) {
			t.Errorf("%.80s: got %v, want a 400 saying %q", tc.query, err, tc.says)
		}
	}
}

// The nesting limit holds whatever the length limits are.
func TestDeepFilter(t *testing.T) {
	coffee := load(t, querytest.CoffeeShops())
	for _, f := range []string{strings.Repeat("not ", 10000) + "Open eq 1", strings.Repeat("(", 10000) + "Open eq 1" + strings.Repeat(")", 10000)} {
		p := &filterParser{t: coffee}
		toks, err := lex(f)
		if err != nil {
			t.Fatal(err)
		}
		p.toks = toks
		if _, err := p.or(); err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("%.20s…: %v", f, err)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		query string
		ok    bool
	}{
		{"jsonp=Microsoft.Maps.NetworkCallbacks.f1&jsonso=abc", true},
		{"jsonp=cb_1$", true},
		{"jsonp=alert(1)//", false},
		{"jsonp=a.", false},
		{"jsonp=<script>", false},
		{"$format=xml", false},
		{"$format=JSON&$inlinecount=allpages&isStaging=1", true},
		{"isStaging=yes", false},
	} {
		p, err := ParseParams(tc.query)
		if err == nil {
			_, err = ParseRequest(p)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.query, err, tc.ok)
		}
	}
	if _, err := ParseParams("$filter=" + strings.Repeat("a", 64<<10)); err == nil {
		t.Error("a 64 KB query string was accepted")
	}
}

func TestPaging(t *testing.T) {
	coffee := load(t, querytest.CoffeeShops())
	all, res, _, err := run(t, coffee, "spatialFilter=bbox(-90,-180,90,180)&$top=250&$inlinecount=allpages")
	if err != nil || res.Count != coffee.Len() {
		t.Fatalf("%v, count %d", err, res.Count)
	}
	var paged []string
	for skip := 0; skip < len(all); skip += 3 {
		ids, _, _, err := run(t, coffee, "spatialFilter=bbox(-90,-180,90,180)&$top=3&$skip="+strconv.Itoa(skip))
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, ids...)
	}
	if strings.Join(paged, " ") != strings.Join(all, " ") {
		t.Errorf("pages %v, whole %v", paged, all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Errorf("not in entity ID order: %v", all)
		}
	}
}

func oneOf(s string, want ...string) bool {
	for _, w := range want {
		if s == w {
			return true
		}
	}
	return false
}
