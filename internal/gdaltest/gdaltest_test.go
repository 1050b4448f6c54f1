package gdaltest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadersAgree: each reader finds in a hand-written file its features,
// extent, geometry types (an empty line string counts, a null geometry does
// not), fields with their types and values, and keeps them in a GeoPackage.
func TestReadersAgree(t *testing.T) {
	for _, gdal := range Readers(t) {
		t.Run(gdal.Name, func(t *testing.T) {
			r := gdal.Read(t, "testdata/sample.geojson")
			check := func(what string, r Report) {
				t.Helper()
				if r.Features != 4 || len(r.Rows) != 4 {
					t.Errorf("%s: %d features, %d rows; want 4", what, r.Features, len(r.Rows))
				}
				if fmt.Sprint(r.Extent) != "[0 0 3 5]" {
					t.Errorf("%s: extent %v", what, r.Extent)
				}
				if got := fmt.Sprint(r.GeometryTypes); got != "map[LINESTRING:1 POINT:1 POLYGON:1]" {
					t.Errorf("%s: geometry types %s", what, got)
				}
				for name, typ := range map[string]string{"Name": "String", "Population": "String", "Created": "DateTime", "N": "Integer"} {
					if got := r.FieldType(name); got != typ {
						t.Errorf("%s: field %s is %q, want %s", what, name, got, typ)
					}
				}
			}
			check("GeoJSON", r)
			if got := r.Rows[0]["Name"] + " " + r.Rows[0]["Population"] + " " + r.Rows[1]["N"]; got != "Café 9007199254740993 4" {
				t.Errorf("values %q", got)
			}
			if _, ok := r.Rows[1]["Created"]; ok {
				t.Errorf("a null date-time reads as %q", r.Rows[1]["Created"])
			}
			at, err := ParseDateTime(r.Rows[3]["Created"])
			if want := time.Date(2010, 3, 1, 6, 0, 0, 0, time.UTC); err != nil || !at.Equal(want) {
				t.Errorf("Created %q: %v %v, want %v", r.Rows[3]["Created"], at, err, want)
			}
			gpkg := gdal.ToGeoPackage(t, "testdata/sample.geojson", filepath.Join(t.TempDir(), "sample.gpkg"))
			check("GeoPackage", gpkg)
			if gpkg.Driver != "" && gpkg.Driver != "GPKG" {
				t.Errorf("GeoPackage read by %s", gpkg.Driver)
			}
		})
	}
}

// TestGDALComplaintFails: what GDAL complains about while reading fails the
// read, as ogrinfo's ERROR lines do.
func TestGDALComplaintFails(t *testing.T) {
	_, err := runReport(python(), "report", "testdata/bad-coordinates.geojson")
	if err == nil || !strings.Contains(err.Error(), "Invalid coord dimension") {
		t.Fatalf("err = %v, want GDAL's complaint", err)
	}
}

// TestMissingPyogrioSaysHowToInstall: an interpreter without pyogrio, or no
// interpreter, is an error that says to run make tools, never a pass.
func TestMissingPyogrioSaysHowToInstall(t *testing.T) {
	// The pinned interpreter without its site-packages has no pyogrio.
	noSite := filepath.Join(t.TempDir(), "python-nosite")
	if err := os.WriteFile(noSite, []byte("#!/bin/sh\nexec "+python()+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, interpreter := range []string{noSite, filepath.Join(t.TempDir(), "no-such-python")} {
		_, err := runReport(interpreter, "report", "testdata/sample.geojson")
		if err == nil || !strings.Contains(err.Error(), "make tools") {
			t.Errorf("%s: err = %v, want the install hint", interpreter, err)
		}
	}
}
