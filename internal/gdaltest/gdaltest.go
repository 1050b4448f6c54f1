// Package gdaltest has GDAL read the vector files the tests write: a reader no one here wrote
// judges them. GDAL comes with the pinned Python tools (pyogrio's wheels carry it), run by
// $SDSOPS_PYTHON, so no system GDAL is needed; where the system's ogrinfo and ogr2ogr are
// installed they read the same file as a second opinion.
package gdaltest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

//go:embed gdal_report.py
var reportSource string

// reportExitNoPyogrio is gdal_report.py's exit status when pyogrio cannot be imported.
const reportExitNoPyogrio = 3

// InstallHint says how to get the pinned GDAL.
const InstallHint = "make tools installs the pinned Python tools (pyogrio, with GDAL inside, is one; requirements-dev.txt) into .venv; run with SDSOPS_PYTHON=.venv/bin/python"

// Report is what GDAL found in a file.
type Report struct {
	Reader   string // "pyogrio (GDAL 3.12.4)" or "ogrinfo"
	Driver   string
	Features int64
	// Extent is minX, minY, maxX, maxY; nil when no feature has a geometry.
	Extent []float64
	// GeometryTypes counts the features by the OGR name of their geometry's type
	// (POINT, LINESTRING, ...); features without a geometry are not counted.
	GeometryTypes map[string]int64
	Fields        []Field
	// Rows holds each feature's non-null field values, as text.
	Rows []map[string]string
}

// Field is a layer field and its OGR type (String, Integer, Real, DateTime, ...).
type Field struct {
	Name, Type string
}

// FieldType is the OGR type of the named field, or "" when the layer has no such field.
func (r Report) FieldType(name string) string {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Type
		}
	}
	return ""
}

// python is the interpreter with the pinned tools: $SDSOPS_PYTHON (the Makefile sets it),
// else python3.
func python() string {
	if p := os.Getenv("SDSOPS_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

// Read has the pinned GDAL read path. A missing pyogrio fails the test, with how to
// install it: a check that did not run must not pass.
func Read(t testing.TB, path string) Report {
	t.Helper()
	r, err := runReport(python(), "report", path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ToGeoPackage has the pinned GDAL convert src into the GeoPackage dst and read dst back.
func ToGeoPackage(t testing.TB, src, dst string) Report {
	t.Helper()
	r, err := runReport(python(), "gpkg", src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runReport(python string, args ...string) (Report, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(python, append([]string{"-c", reportSource}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code == reportExitNoPyogrio || err != nil && cmd.ProcessState == nil {
		return Report{}, fmt.Errorf("GDAL through pyogrio is not available from %s: %v %s\n%s", python, err, strings.TrimSpace(stderr.String()), InstallHint)
	}
	if err != nil {
		return Report{}, fmt.Errorf("GDAL (pyogrio) %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var out struct {
		GDAL          string               `json:"gdal"`
		Driver        string               `json:"driver"`
		Features      int64                `json:"features"`
		FeaturesRead  int64                `json:"featuresRead"`
		Extent        []float64            `json:"extent"`
		GeometryTypes map[string]int64     `json:"geometryTypes"`
		Fields        []Field              `json:"fields"`
		Rows          []map[string]*string `json:"rows"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return Report{}, fmt.Errorf("GDAL (pyogrio) %s: report: %v", strings.Join(args, " "), err)
	}
	if out.Features != out.FeaturesRead {
		return Report{}, fmt.Errorf("GDAL (pyogrio) %s: the layer counts %d features, reading gave %d", strings.Join(args, " "), out.Features, out.FeaturesRead)
	}
	r := Report{
		Reader:        "pyogrio (GDAL " + out.GDAL + ")",
		Driver:        out.Driver,
		Features:      out.Features,
		Extent:        out.Extent,
		GeometryTypes: out.GeometryTypes,
		Fields:        out.Fields,
	}
	for _, row := range out.Rows {
		values := map[string]string{}
		for k, v := range row {
			if v != nil {
				values[k] = *v
			}
		}
		r.Rows = append(r.Rows, values)
	}
	return r, nil
}

// SystemOGR reports whether the system's ogrinfo and ogr2ogr are installed.
func SystemOGR() bool {
	for _, tool := range []string{"ogrinfo", "ogr2ogr"} {
		if _, err := exec.LookPath(tool); err != nil {
			return false
		}
	}
	return true
}

var (
	ogrFeatureCount = regexp.MustCompile(`(?m)^Feature Count: (\d+)$`)
	ogrExtent       = regexp.MustCompile(`(?m)^Extent: \(([-\d.e+]+), ([-\d.e+]+)\) - \(([-\d.e+]+), ([-\d.e+]+)\)$`)
	ogrFieldDef     = regexp.MustCompile(`(?m)^([^:\n]+): ([A-Za-z]+) \(\d+\.\d+\)$`)
	ogrFeature      = regexp.MustCompile(`(?m)^OGRFeature\(`)
	ogrGeomSummary  = regexp.MustCompile(`(?m)^  ([A-Z]+)(?: EMPTY)? :`)
	ogrFieldValue   = regexp.MustCompile(`(?m)^  ([^\n]+?) \(([A-Za-z]+)\) = (.*)$`)
)

// ReadSystem has the system's ogrinfo read path: call it only when SystemOGR.
func ReadSystem(t testing.TB, path string) Report {
	t.Helper()
	summary := ogr(t, "ogrinfo", "-ro", "-al", "-so", path)
	r := Report{Reader: "ogrinfo", GeometryTypes: map[string]int64{}}
	m := ogrFeatureCount.FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("ogrinfo reports no feature count:\n%s", summary)
	}
	r.Features, _ = strconv.ParseInt(m[1], 10, 64)
	if e := ogrExtent.FindStringSubmatch(summary); e != nil {
		r.Extent = make([]float64, 4)
		for i := range r.Extent {
			r.Extent[i], _ = strconv.ParseFloat(e[i+1], 64)
		}
	}
	for _, f := range ogrFieldDef.FindAllStringSubmatch(summary, -1) {
		if f[1] != "Extent" && f[1] != "Geometry" {
			r.Fields = append(r.Fields, Field{Name: f[1], Type: f[2]})
		}
	}
	all := ogr(t, "ogrinfo", "-ro", "-al", "-q", "-geom=SUMMARY", path)
	starts := ogrFeature.FindAllStringIndex(all, -1)
	for i, s := range starts {
		end := len(all)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		feature := all[s[0]:end]
		if g := ogrGeomSummary.FindStringSubmatch(feature); g != nil {
			r.GeometryTypes[g[1]]++
		}
		values := map[string]string{}
		for _, v := range ogrFieldValue.FindAllStringSubmatch(feature, -1) {
			if v[3] != "(null)" {
				values[v[1]] = v[3]
			}
		}
		r.Rows = append(r.Rows, values)
	}
	return r
}

// ToGeoPackageSystem has the system's ogr2ogr convert src into the GeoPackage dst, and
// ogrinfo read dst back: call it only when SystemOGR.
func ToGeoPackageSystem(t testing.TB, src, dst string) Report {
	t.Helper()
	ogr(t, "ogr2ogr", "-f", "GPKG", dst, src)
	return ReadSystem(t, dst)
}

func ogr(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.Contains(stderr.String(), "ERROR") {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Reader is one way of having GDAL read a file and convert it to a GeoPackage.
type Reader struct {
	Name         string
	Read         func(t testing.TB, path string) Report
	ToGeoPackage func(t testing.TB, src, dst string) Report
}

// Readers are the pinned GDAL, always, and the system's ogrinfo and ogr2ogr where installed.
func Readers(t testing.TB) []Reader {
	t.Helper()
	rs := []Reader{{Name: "pinned GDAL", Read: Read, ToGeoPackage: ToGeoPackage}}
	if SystemOGR() {
		rs = append(rs, Reader{Name: "system ogrinfo", Read: ReadSystem, ToGeoPackage: ToGeoPackageSystem})
	} else {
		t.Log("no system ogrinfo/ogr2ogr on PATH: only the pinned GDAL reads")
	}
	return rs
}

// ParseDateTime reads a DateTime field's value as either reader writes it: ISO 8601
// (pyogrio) or ogrinfo's 2010/03/01 08:00:00+00.
func ParseDateTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse("2006/01/02 15:04:05-07", s)
}
