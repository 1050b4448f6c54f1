package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
)

// TestOracle holds the engine to DuckDB with its spatial extension: a few
// thousand randomized queries over two generated data sources (points
// only; every geometry type), with typed, non-ASCII and omitted values,
// must give the same entities in the same order with the same values, and
// __Distance within 1 m of the haversine written out in SQL at 6378.137 km.
func TestOracle(t *testing.T) {
	if testing.Short() {
		t.Skip("the oracle runs DuckDB")
	}
	py := pythonWithDuckDB(t)
	for _, tc := range []struct {
		name    string
		geo     bool
		seed    uint64
		queries int
	}{
		{"points", false, 1, 1500},
		{"geometries", true, 2, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 20))
			src := newGenSource(rng, 2000, tc.geo)
			dir := t.TempDir()
			tb, err := DataSetLoader{}.Load(context.Background(), strings.NewReader(src.export()))
			if err != nil {
				t.Fatal(err)
			}
			qs := make([]genQuery, tc.queries)
			for i := range qs {
				qs[i] = src.query(rng)
			}
			want := runOracle(t, py, dir, src, qs)
			failures := 0
			for i, q := range qs {
				if err := compare(tb, q, want[i]); err != nil {
					failures++
					if failures <= 10 {
						t.Errorf("query %d %s\nSQL WHERE %s ORDER BY %s\n%v", i, q.params.Encode(), q.where, q.order, err)
					}
				}
			}
			if failures > 0 {
				t.Errorf("%d of %d queries differ from DuckDB", failures, len(qs))
			}
			t.Logf("%d queries agree with DuckDB", len(qs)-failures)
		})
	}
}

func pythonWithDuckDB(t testing.TB) string {
	t.Helper()
	name := os.Getenv("SDSOPS_PYTHON")
	if name == "" {
		name = "python3"
	}
	p, err := exec.LookPath(name)
	if err == nil {
		var out []byte
		if out, err = exec.Command(p, "-c", "import duckdb, duckdb_extension_spatial").CombinedOutput(); err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
	}
	if err != nil {
		t.Fatalf("%s lacks duckdb or duckdb-extension-spatial (run make tools, or set SDSOPS_PYTHON): %v", name, err)
	}
	return p
}

type genCol struct {
	name string
	typ  dataset.Type
	sql  string
}

// genSource is a generated data source: rows of values by column, nil
// for an omitted value.
type genSource struct {
	cols []genCol
	rows [][]any
}

var (
	genNames  = []string{"Café Ø", "Straße 5", "東京タワー", "Fourth Coffee", "A & B <shop>", "", "O'Brien's", "zebra", "Zebra", "ǅemal"}
	genCities = []string{"Seattle", "Clearwater", "Clear Lake", "Newark", "Zürich", "São Paulo"}
)

func newGenSource(rng *rand.Rand, n int, geo bool) *genSource {
	s := &genSource{cols: []genCol{
		{"EntityID", dataset.String, "VARCHAR"}, {"Latitude", dataset.Double, "DOUBLE"}, {"Longitude", dataset.Double, "DOUBLE"},
		{"Name", dataset.String, "VARCHAR"}, {"City", dataset.String, "VARCHAR"}, {"Score", dataset.Long, "BIGINT"},
		{"Rating", dataset.Double, "DOUBLE"}, {"Open", dataset.Boolean, "BOOLEAN"}, {"Created", dataset.DateTime, "TIMESTAMP"},
	}}
	if geo {
		s.cols = append(s.cols, genCol{"Geom", dataset.Geography, "VARCHAR"})
	}
	omit := func(p float64, v any) any {
		if rng.Float64() < p {
			return nil
		}
		return v
	}
	for i := 0; i < n; i++ {
		var lat, lon float64
		switch {
		case i > 0 && rng.IntN(20) == 0: // shares a point: ties in distance
			lat, lon = s.rows[i-1][1].(float64), s.rows[i-1][2].(float64)
		case rng.IntN(10) == 0: // across the antimeridian
			lat, lon = -17+rng.Float64(), 179.5+rng.Float64()
			if lon > 180 {
				lon -= 360
			}
		default:
			lat, lon = 40+rng.Float64(), -75+rng.Float64()
		}
		lat, lon = math.Round(lat*1e6)/1e6, math.Round(lon*1e6)/1e6
		id := strconv.Itoa(rng.IntN(2000000) - 1000000)
		if rng.IntN(8) == 0 {
			id = "é" + id
		}
		id += "-" + strconv.Itoa(i) // unique
		row := []any{id, lat, lon,
			omit(0.1, genNames[rng.IntN(len(genNames))]),
			omit(0.1, genCities[rng.IntN(len(genCities))]),
			omit(0.1, int64(rng.IntN(2001)-1000)),
			omit(0.1, math.Round(rng.Float64()*5000)/1000),
			omit(0.15, rng.IntN(2) == 0),
			omit(0.1, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(25*365*24*3600*1000))*time.Millisecond)),
		}
		if geo {
			row = append(row, omit(0.2, genShape(rng, lat, lon)))
		}
		s.rows = append(s.rows, row)
	}
	return s
}

// genShape is a small shape of any WKT type near a point.
func genShape(rng *rand.Rand, lat, lon float64) string {
	d := 0.001 + rng.Float64()*0.05
	pt := func(dx, dy float64) string { return fmt.Sprintf("%.6f %.6f", lon+dx*d, lat+dy*d) }
	ring := func(x, y, s float64) string {
		return "(" + pt(x, y) + ", " + pt(x+s, y) + ", " + pt(x+s, y+s) + ", " + pt(x, y+s) + ", " + pt(x, y) + ")"
	}
	switch rng.IntN(7) {
	case 0:
		return "POINT (" + pt(0.5, 0.5) + ")"
	case 1:
		return "LINESTRING (" + pt(0, 0) + ", " + pt(1, 0.3) + ", " + pt(1.5, 1) + ")"
	case 2:
		return "POLYGON (" + ring(0, 0, 1) + ")"
	case 3:
		return "POLYGON (" + ring(0, 0, 1) + ", " + ring(0.25, 0.25, 0.5) + ")"
	case 4:
		return "MULTIPOINT ((" + pt(0, 0) + "), (" + pt(1, 1) + "))"
	case 5:
		return "MULTILINESTRING ((" + pt(0, 0) + ", " + pt(1, 0) + "), (" + pt(0, 1) + ", " + pt(1, 1) + "))"
	}
	return "MULTIPOLYGON ((" + ring(0, 0, 0.4) + "), (" + ring(0.6, 0.6, 0.4) + "))"
}

func (s *genSource) export() string {
	sch := datasettest.Schema{Root: "Gen", Name: "Gen", EntityType: "Thing", Key: "EntityID"}
	for _, c := range s.cols {
		sch.Columns = append(sch.Columns, datasettest.Column{Name: c.name, Type: strings.TrimPrefix(c.typ.String(), "xs:"), UTC: c.typ == dataset.DateTime})
	}
	var b strings.Builder
	b.WriteString(sch.Header())
	for _, r := range s.rows {
		b.WriteString("  <Thing>")
		for i, v := range r {
			if v == nil {
				continue
			}
			b.WriteString("<" + s.cols[i].name + ">")
			var esc bytes.Buffer
			_ = xmlEscape(&esc, textOf(v))
			b.Write(esc.Bytes())
			b.WriteString("</" + s.cols[i].name + ">")
		}
		b.WriteString("</Thing>\n")
	}
	b.WriteString(sch.Footer())
	return b.String()
}

func textOf(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.Format("2006-01-02T15:04:05.000Z")
	}
	return v.(string)
}

func xmlEscape(b *bytes.Buffer, s string) error {
	_, err := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").WriteString(b, s)
	return err
}

func (s *genSource) jsonLines() []byte {
	var b bytes.Buffer
	for _, r := range s.rows {
		m := map[string]any{}
		for i, v := range r {
			if t, ok := v.(time.Time); ok {
				v = t.Format("2006-01-02 15:04:05.000")
			}
			m[s.cols[i].name] = v
		}
		line, _ := json.Marshal(m)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// genQuery is one randomized query in both languages.
type genQuery struct {
	params url.Values
	where  string
	order  string
	dist   string
	sel    []string // SQL per selected property (the $select list, expanded)
	limit  int
	offset int
}

const sqlHaversine = "(2 * 6378.137 * asin(sqrt(pow(sin(radians(Latitude - (%[1]s)) / 2), 2) + cos(radians(%[1]s)) * cos(radians(Latitude)) * pow(sin(radians(Longitude - (%[2]s)) / 2), 2))))"

func f64(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func (s *genSource) query(rng *rand.Rand) genQuery {
	q := genQuery{params: url.Values{}, limit: DefaultTop}
	anchor := s.rows[rng.IntN(len(s.rows))]
	alat, alon := anchor[1].(float64), anchor[2].(float64)
	var spatialSQL string
	kind := rng.IntN(100)
	switch {
	case kind < 35:
		km := MinNearbyKm + rng.Float64()*30
		lat, lon := alat+(rng.Float64()-0.5)*0.1, alon+(rng.Float64()-0.5)*0.1
		lon = math.Max(-180, math.Min(180, lon))
		q.params.Set("spatialFilter", fmt.Sprintf("nearby(%s,%s,%s)", f64(lat), f64(lon), f64(km)))
		q.dist = fmt.Sprintf(sqlHaversine, f64(lat), f64(lon))
		spatialSQL = q.dist + " <= " + f64(km)
	case kind < 38: // the whole Earth: a full scan
		q.params.Set("spatialFilter", "bbox(-90,-180,90,180)")
		spatialSQL = "TRUE"
		q.dist = fmt.Sprintf(sqlHaversine, "0", "0")
	case kind < 65:
		h, w := 0.01+rng.Float64()*0.5, 0.01+rng.Float64()*0.5
		sLat, wLon := alat-rng.Float64()*h, alon-rng.Float64()*w
		nLat, eLon := sLat+h, wLon+w
		if wLon < -180 {
			wLon += 360
		}
		if eLon > 180 {
			eLon -= 360
		}
		q.params.Set("spatialFilter", fmt.Sprintf("bbox(%s,%s,%s,%s)", f64(sLat), f64(wLon), f64(nLat), f64(eLon)))
		lonSQL := fmt.Sprintf("Longitude BETWEEN %s AND %s", f64(wLon), f64(eLon))
		if wLon > eLon {
			lonSQL = fmt.Sprintf("(Longitude >= %s OR Longitude <= %s)", f64(wLon), f64(eLon))
		}
		spatialSQL = fmt.Sprintf("Latitude BETWEEN %s AND %s AND %s", f64(sLat), f64(nLat), lonSQL)
		q.dist = fmt.Sprintf(sqlHaversine, f64((sLat+nLat)/2), f64(bboxCentreLon(wLon, eLon)))
	case kind < 85:
		wkt := genArea(rng, alat, alon)
		q.params.Set("spatialFilter", "intersects('"+wkt+"')")
		spatialSQL = "ST_Intersects(shape, ST_GeomFromText('" + wkt + "'))"
	}
	filterSQL := "TRUE"
	if spatialSQL == "" || rng.IntN(10) < 6 {
		odata, sql := s.filter(rng)
		q.params.Set("$filter", odata)
		filterSQL = sql
	}
	if spatialSQL == "" {
		spatialSQL = "TRUE"
	}
	q.where = "(" + spatialSQL + ") AND (" + filterSQL + ")"
	hasDist := q.dist != ""
	// $select
	if rng.IntN(3) > 0 {
		var names []string
		for _, c := range rng.Perm(len(s.cols))[:1+rng.IntN(len(s.cols))] {
			names = append(names, s.cols[c].name)
			q.sel = append(q.sel, sqlValue(s.cols[c]))
		}
		if hasDist && rng.IntN(2) == 0 {
			names = append(names, "__Distance")
			q.sel = append(q.sel, "__d")
		}
		if rng.IntN(5) == 0 {
			names[0] = strings.ToLower(names[0]) // property names in any case
		}
		q.params.Set("$select", strings.Join(names, ","))
	} else {
		for _, c := range s.cols {
			q.sel = append(q.sel, sqlValue(c))
		}
	}
	// $orderby
	var order []string
	if rng.IntN(10) < 4 {
		var keys []string
		for _, c := range rng.Perm(len(s.cols))[:1+rng.IntN(3)] {
			col := s.cols[c]
			if col.name == "Latitude" || col.name == "Longitude" || col.typ == dataset.Geography {
				continue
			}
			dir := []string{"", " asc", " desc"}[rng.IntN(3)]
			keys = append(keys, col.name+dir)
			desc := dir == " desc" || dir == "" && col.typ == dataset.Boolean
			if desc {
				order = append(order, col.name+" DESC NULLS LAST")
			} else {
				order = append(order, col.name+" ASC NULLS FIRST")
			}
		}
		if hasDist && len(keys) < 3 && rng.IntN(3) == 0 {
			keys = append(keys, "__Distance desc")
			order = append(order, "__d DESC")
		}
		if len(keys) > 0 {
			q.params.Set("$orderby", strings.Join(keys, ","))
		}
	}
	if q.params.Get("spatialFilter") != "" && strings.HasPrefix(q.params.Get("spatialFilter"), "nearby") {
		order = append(order, "__d")
	}
	q.order = strings.Join(append(order, "EntityID"), ", ")
	if rng.IntN(2) == 0 {
		q.limit = rng.IntN(MaxTop + 1)
		q.params.Set("$top", strconv.Itoa(q.limit))
	}
	if rng.IntN(4) == 0 {
		q.offset = rng.IntN(60)
		q.params.Set("$skip", strconv.Itoa(q.offset))
	}
	if rng.IntN(2) == 0 {
		q.params.Set("$inlinecount", "allpages")
	}
	return q
}

func sqlValue(c genCol) string {
	if c.typ == dataset.DateTime {
		return "epoch_ms(" + c.name + ")"
	}
	return c.name
}

// genArea is a polygon (at most 20 points, possibly concave) or a line
// near a point.
func genArea(rng *rand.Rand, lat, lon float64) string {
	r := 0.01 + rng.Float64()*0.3
	if rng.IntN(4) == 0 {
		clamp := func(x float64) string { return f64(math.Max(-180, math.Min(180, x))) }
		return fmt.Sprintf("LINESTRING (%s %s, %s %s, %s %s)", clamp(lon-r), f64(lat-r), clamp(lon+r), f64(lat), f64(lon), f64(lat+r))
	}
	n := 3 + rng.IntN(17)
	var pts []string
	for i := 0; i < n; i++ {
		a := 2 * math.Pi * float64(i) / float64(n)
		rr := r * (0.4 + 0.6*rng.Float64())
		pts = append(pts, fmt.Sprintf("%.6f %.6f", math.Max(-180, math.Min(180, lon+rr*math.Cos(a))), lat+rr*math.Sin(a)))
	}
	pts = append(pts, pts[0])
	return "POLYGON ((" + strings.Join(pts, ", ") + "))"
}

// filter returns a random $filter and its SQL.
func (s *genSource) filter(rng *rand.Rand) (string, string) {
	if rng.IntN(8) == 0 { // a wildcard search stands alone
		city := []rune(genCities[rng.IntN(len(genCities))])
		n := 1 + rng.IntN(len(city)-1)
		part := string(city[:n])
		fn, sqlFn := "StartsWith", "starts_with"
		if rng.IntN(2) == 0 {
			fn, sqlFn, part = "EndsWith", "suffix", string(city[len(city)-n:])
		}
		od := fmt.Sprintf("%s(City,%s)", fn, quote(part))
		sql := fmt.Sprintf("%s(City, %s)", sqlFn, quote(part))
		switch rng.IntN(3) {
		case 1:
			od += " eq true"
		case 2:
			od += " eq false"
			sql = "NOT " + sql
		}
		return od, sql
	}
	return s.expr(rng, 0)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (s *genSource) expr(rng *rand.Rand, depth int) (string, string) {
	switch k := rng.IntN(10); {
	case depth < 3 && k < 2:
		a, as := s.expr(rng, depth+1)
		b, bs := s.expr(rng, depth+1)
		if k == 0 {
			return "(" + a + ") and (" + b + ")", "(" + as + ") AND (" + bs + ")"
		}
		return "(" + a + ") or (" + b + ")", "(" + as + ") OR (" + bs + ")"
	case depth < 3 && k == 2:
		a, as := s.expr(rng, depth+1)
		return "not (" + a + ")", "NOT (" + as + ")"
	case k == 3:
		var ids []string
		for i := 0; i < 1+rng.IntN(10); i++ {
			ids = append(ids, quote(s.rows[rng.IntN(len(s.rows))][0].(string)))
		}
		return "entityId in (" + strings.Join(ids, ",") + ")", "EntityID IN (" + strings.Join(ids, ", ") + ")"
	}
	filterable := []int{0, 3, 4, 5, 6, 7, 8}
	c := filterable[rng.IntN(len(filterable))]
	col := s.cols[c]
	if rng.IntN(8) == 0 {
		if rng.IntN(2) == 0 {
			return col.name + " eq null", col.name + " IS NULL"
		}
		return col.name + " ne null", col.name + " IS NOT NULL"
	}
	ops := []string{"eq", "ne", "gt", "ge", "lt", "le"}
	sqlOps := []string{"=", "<>", ">", ">=", "<", "<="}
	o := rng.IntN(len(ops))
	v := s.rows[rng.IntN(len(s.rows))][c]
	for v == nil {
		v = s.rows[rng.IntN(len(s.rows))][c]
	}
	var lit, sqlLit string
	switch v := v.(type) {
	case string:
		lit, sqlLit = quote(v), quote(v)
	case int64:
		lit, sqlLit = strconv.FormatInt(v, 10), strconv.FormatInt(v, 10)
	case float64:
		lit, sqlLit = f64(v), "CAST('"+f64(v)+"' AS DOUBLE)"
	case bool:
		lit = []string{"false", "true"}[b2i(v)]
		if rng.IntN(2) == 0 {
			lit = strconv.Itoa(b2i(v)) // the docs' 1 and 0
		}
		sqlLit = strconv.FormatBool(v)
	case time.Time:
		lit = "datetime'" + v.Format("2006-01-02T15:04:05.000") + "'"
		sqlLit = "TIMESTAMP '" + v.Format("2006-01-02 15:04:05.000") + "'"
	}
	return col.name + " " + ops[o] + " " + lit, col.name + " " + sqlOps[o] + " " + sqlLit
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

type oracleAnswer struct {
	Count int
	Rows  [][]json.RawMessage // id, [values], distance
}

func runOracle(t *testing.T, py, dir string, s *genSource, qs []genQuery) []oracleAnswer {
	t.Helper()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var cols [][2]string
	for _, c := range s.cols {
		cols = append(cols, [2]string{c.name, c.sql})
	}
	colsJSON, _ := json.Marshal(cols)
	type sqlQuery struct {
		Where  string   `json:"where"`
		Order  string   `json:"order"`
		Dist   *string  `json:"dist"`
		Select []string `json:"select"`
		Limit  int      `json:"limit"`
		Offset int      `json:"offset"`
	}
	var sqs []sqlQuery
	for _, q := range qs {
		sq := sqlQuery{Where: q.where, Order: q.order, Select: q.sel, Limit: q.limit, Offset: q.offset}
		if q.dist != "" {
			d := q.dist
			sq.Dist = &d
		}
		sqs = append(sqs, sq)
	}
	qJSON, _ := json.Marshal(sqs)
	out := filepath.Join(dir, "answers.json")
	cmd := exec.Command(py, "testdata/oracle.py", write("entities.jsonl", s.jsonLines()), write("columns.json", colsJSON), write("queries.json", qJSON), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oracle: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var answers []oracleAnswer
	if err := json.Unmarshal(data, &answers); err != nil {
		t.Fatal(err)
	}
	return answers
}

// compare runs q on tb and holds the answer to DuckDB's.
func compare(tb *Table, q genQuery, want oracleAnswer) error {
	p, err := ParseParams(q.params.Encode())
	if err != nil {
		return err
	}
	pq, err := Parse(tb, p)
	if err != nil {
		return err
	}
	res := tb.Run(pq)
	if pq.InlineCount && res.Count != want.Count {
		return fmt.Errorf("count %d, DuckDB %d", res.Count, want.Count)
	}
	if len(res.Rows) != len(want.Rows) {
		return fmt.Errorf("%d rows, DuckDB %d", len(res.Rows), len(want.Rows))
	}
	for k, r := range res.Rows {
		w := want.Rows[k]
		var id string
		_ = json.Unmarshal(w[0], &id)
		if got := tb.ID(r.Index); got != id {
			return fmt.Errorf("row %d is %s, DuckDB %s", k, got, id)
		}
		if pq.Spatial == Nearby { // bbox's __Distance is checked where selected
			var d float64
			_ = json.Unmarshal(w[2], &d)
			if math.Abs(d-r.Distance) > 0.001 {
				return fmt.Errorf("row %d (%s): __Distance %.6f km, DuckDB %.6f", k, id, r.Distance, d)
			}
		}
		var vals []json.RawMessage
		_ = json.Unmarshal(w[1], &vals)
		props := pq.Project(tb, r)
		if len(props) != len(vals) {
			return fmt.Errorf("row %d: %d properties, DuckDB %d", k, len(props), len(vals))
		}
		for j, pr := range props {
			if err := sameValue(pr, vals[j]); err != nil {
				return fmt.Errorf("row %d (%s), %s: %v", k, id, pr.Name, err)
			}
		}
	}
	return nil
}

func sameValue(p Prop, raw json.RawMessage) error {
	if string(raw) == "null" {
		if !p.Value.Null {
			return fmt.Errorf("%+v, DuckDB null", p.Value)
		}
		return nil
	}
	if p.Value.Null {
		return fmt.Errorf("null, DuckDB %s", raw)
	}
	var ok bool
	switch p.Type {
	case dataset.Long:
		var v int64
		ok = json.Unmarshal(raw, &v) == nil && v == p.Value.Int
	case dataset.Double:
		var v float64
		ok = json.Unmarshal(raw, &v) == nil && (v == p.Value.Num || p.Name == "__Distance" && math.Abs(v-p.Value.Num) <= 0.001)
	case dataset.Boolean:
		var v bool
		ok = json.Unmarshal(raw, &v) == nil && v == p.Value.Bool
	case dataset.DateTime:
		var v int64
		ok = json.Unmarshal(raw, &v) == nil && v == p.Value.Time.UnixMilli()
	default:
		var v string
		ok = json.Unmarshal(raw, &v) == nil && v == p.Value.Str
	}
	if !ok {
		return fmt.Errorf("%+v, DuckDB %s", p.Value, raw)
	}
	return nil
}
