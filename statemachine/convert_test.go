package statemachine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/gdaltest"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// conversionRecord is the manifest's conversion field, as a reader of the
// manifest sees it.
type conversionRecord struct {
	GeoJSON, Schema outputFile
	GeoParquet      *struct {
		outputFile
		Rows      int64 `json:"rows"`
		RowGroups int   `json:"rowGroups"`
	} `json:"geoparquet"`
	FeatureCount          int64            `json:"featureCount"`
	GeometryCounts        map[string]int64 `json:"geometryCounts"`
	InvalidGeometries     int64            `json:"invalidGeometries"`
	MissingGeometries     int64            `json:"missingGeometries"`
	SourceSHA256          string           `json:"sourceSha256"`
	FromUnverifiedArchive bool             `json:"fromUnverifiedArchive"`
}

type outputFile struct {
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

type manifestWithConversion struct {
	EntityCount int64             `json:"entityCount"`
	SHA256      string            `json:"sha256"`
	Conversion  *conversionRecord `json:"conversion"`
}

func readManifest(t *testing.T, key string) manifestWithConversion {
	t.Helper()
	var m manifestWithConversion
	if err := json.Unmarshal(get(t, key), &m); err != nil {
		t.Fatalf("manifest %s: %v", key, err)
	}
	return m
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkConversion reads the outputs a manifest records back from S3,
// checks them against the record, and has GDAL count their features and
// geometry types and convert them to a GeoPackage; it returns what the
// pinned GDAL reported.
func checkConversion(t *testing.T, manifestKey string) (features int64, types map[string]int64) {
	t.Helper()
	m := readManifest(t, manifestKey)
	r := m.Conversion
	if r == nil {
		t.Fatalf("manifest %s records no conversion", manifestKey)
	}
	if r.SourceSHA256 != m.SHA256 || r.FeatureCount != m.EntityCount {
		t.Errorf("conversion of sha256 %s with %d features; the archive has sha256 %s and %d entities", r.SourceSHA256, r.FeatureCount, m.SHA256, m.EntityCount)
	}
	base := strings.TrimSuffix(manifestKey, ".xml.manifest.json")
	if r.GeoJSON.Key != base+".geojson" || r.Schema.Key != base+".schema.json" {
		t.Errorf("outputs at %s and %s, want beside the archive", r.GeoJSON.Key, r.Schema.Key)
	}
	if pq := r.GeoParquet; pq == nil || pq.Key != base+".parquet" || pq.Rows != r.FeatureCount {
		t.Errorf("GeoParquet recorded as %+v, want %s with %d rows", pq, base+".parquet", r.FeatureCount)
	} else if body := get(t, pq.Key); int64(len(body)) != pq.Bytes || sha(body) != pq.SHA256 {
		t.Errorf("GeoParquet in S3: %d bytes sha256 %s; manifest %d %s", len(body), sha(body), pq.Bytes, pq.SHA256)
	}
	gj, schema := get(t, r.GeoJSON.Key), get(t, r.Schema.Key)
	if int64(len(gj)) != r.GeoJSON.Bytes || sha(gj) != r.GeoJSON.SHA256 {
		t.Errorf("GeoJSON in S3: %d bytes sha256 %s; manifest %d %s", len(gj), sha(gj), r.GeoJSON.Bytes, r.GeoJSON.SHA256)
	}
	if int64(len(schema)) != r.Schema.Bytes || sha(schema) != r.Schema.SHA256 {
		t.Errorf("schema in S3: %d bytes sha256 %s; manifest %d %s", len(schema), sha(schema), r.Schema.Bytes, r.Schema.SHA256)
	}
	var doc struct {
		EntityType string            `json:"entityType"`
		Columns    []json.RawMessage `json:"columns"`
	}
	if err := json.Unmarshal(schema, &doc); err != nil || doc.EntityType == "" || len(doc.Columns) == 0 {
		t.Errorf("schema document %s: %v", schema, err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "archive.geojson")
	if err := os.WriteFile(path, gj, 0o644); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for k, v := range r.GeometryCounts {
		if v > 0 {
			want[strings.ToUpper(k)] = v
		}
	}
	for i, gdal := range gdaltest.Readers(t) { // the pinned GDAL first
		geojson := gdal.Read(t, path)
		gpkg := gdal.ToGeoPackage(t, path, filepath.Join(dir, fmt.Sprintf("archive-%d.gpkg", i)))
		for _, got := range []gdaltest.Report{geojson, gpkg} {
			if got.Features != r.FeatureCount {
				t.Errorf("%s (%s) counts %d features, the manifest %d", got.Reader, got.Driver, got.Features, r.FeatureCount)
			}
			if fmt.Sprint(got.GeometryTypes) != fmt.Sprint(want) {
				t.Errorf("%s (%s) geometry types %v, manifest %v", got.Reader, got.Driver, got.GeometryTypes, r.GeometryCounts)
			}
		}
		if i == 0 {
			features, types = geojson.Features, geojson.GeometryTypes
		}
	}
	return features, types
}

// TestBackupConverts: a backup of the data source with every WKT type
// ends with its GeoJSON and schema in S3 beside the XML, recorded in the
// manifest, and GDAL reads in the GeoJSON what the manifest says.
func TestBackupConverts(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	for _, name := range []string{"Stores-2019", "FourthCoffeeSample"} {
		x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": name})
		if x.Status != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("%s: status %s: %s %s", name, x.Status, x.Error, x.Cause)
		}
		conv, _ := x.Output["conversion"].(map[string]any)
		if x.Output["key"] == nil || conv == nil || conv["status"] != "Converted" {
			t.Fatalf("%s: output %v", name, x.Output)
		}
		features, types := checkConversion(t, x.Output["manifestKey"].(string))
		t.Logf("%s: GDAL: %d features, geometry types %v; convert step took %s", name, features, types, stepDuration(x, "Convert"))
	}
	checkArchives(t)
}

// stepDuration is the time from entering state in x to leaving it.
func stepDuration(x *localrun.Execution, state string) time.Duration {
	var in, out time.Time
	for _, ev := range x.History {
		if d := ev.StateEnteredEventDetails; d != nil && aws.ToString(d.Name) == state {
			in = aws.ToTime(ev.Timestamp)
		}
		if d := ev.StateExitedEventDetails; d != nil && aws.ToString(d.Name) == state {
			out = aws.ToTime(ev.Timestamp)
		}
	}
	return out.Sub(in)
}

// archiveOf backs up name without converting it, as archives made before
// conversion existed: the conversion record and outputs are removed.
func archiveOf(t *testing.T, name string) (key, manifestKey string) {
	t.Helper()
	x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": name})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	key, manifestKey = x.Output["key"].(string), x.Output["manifestKey"].(string)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(get(t, manifestKey), &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw, "conversion")
	put(t, manifestKey, must(json.Marshal(raw)))
	base := strings.TrimSuffix(key, ".xml")
	for _, k := range []string{base + ".geojson", base + ".schema.json", base + ".parquet"} {
		if _, err := env.S3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	return key, manifestKey
}

func put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestConvertExistingArchive: an archive without a conversion is
// converted on request, by its key; a second request finds the recorded
// conversion and writes nothing.
func TestConvertExistingArchive(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	key, mkey := archiveOf(t, "Stores-2019")
	x := run(t, "convert", map[string]any{"key": key})
	if x.Status != sfntypes.ExecutionStatusSucceeded || x.Output["status"] != "Converted" {
		t.Fatalf("status %s: %s %s %v", x.Status, x.Error, x.Cause, x.Output)
	}
	checkConversion(t, mkey)
	before := readManifest(t, mkey)
	x = run(t, "convert", map[string]any{"manifestKey": mkey})
	if x.Status != sfntypes.ExecutionStatusSucceeded || x.Output["status"] != "Reused" {
		t.Fatalf("repeat: status %s: %s %s %v", x.Status, x.Error, x.Cause, x.Output)
	}
	if after := readManifest(t, mkey); !reflect.DeepEqual(after.Conversion, before.Conversion) {
		t.Errorf("a repeated convert changed the record: %v, then %v", before.Conversion, after.Conversion)
	}
	// As the API starts it: the key must be an archive of the data source
	// in the path.
	x = run(t, "convert", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeSample", "key": key})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "InvalidInput" {
		t.Errorf("another data source's archive: status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	x = run(t, "convert", map[string]any{"accessId": accessID, "dataSourceName": "Stores-2019", "key": key})
	if x.Status != sfntypes.ExecutionStatusSucceeded || x.Output["status"] != "Reused" {
		t.Errorf("its own archive: status %s error %s cause %s %v", x.Status, x.Error, x.Cause, x.Output)
	}
	checkArchives(t)
}

// TestConvertDataSourceBackfill: without a key, the API's request converts
// every archive of the data source.
func TestConvertDataSourceBackfill(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	_, mkey := archiveOf(t, "FourthCoffeeRoasteries")
	x := run(t, "convert", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries"})
	if x.Status != sfntypes.ExecutionStatusSucceeded || x.Output["converted"].(float64) < 1 || x.Output["failed"] != 0.0 {
		t.Fatalf("status %s: %s %s %v", x.Status, x.Error, x.Cause, x.Output)
	}
	checkConversion(t, mkey)
}

// TestConvertBackfill: every archive under a prefix is converted, those
// converted before are skipped, and the counts say so.
func TestConvertBackfill(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	_, m1 := archiveOf(t, "FourthCoffeeRoasteries")
	_, m2 := archiveOf(t, "Stores-2019")
	prefix := "sds-exports/" + accessID + "/"
	// What is already converted under the prefix is skipped.
	var already int
	p := s3.NewListObjectsV2Paginator(env.S3, &s3.ListObjectsV2Input{Bucket: aws.String(env.Bucket), Prefix: aws.String(prefix)})
	var manifests int
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, ".xml.manifest.json") {
				manifests++
				if readManifest(t, k).Conversion != nil {
					already++
				}
			}
		}
	}
	x := run(t, "convert", map[string]any{"prefix": prefix, "maxConcurrency": 2})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	if x.Output["converted"] != float64(manifests-already) || x.Output["skipped"] != float64(already) || x.Output["failed"] != 0.0 {
		t.Errorf("output %v; %d archives, %d converted before", x.Output, manifests, already)
	}
	for _, m := range []string{m1, m2} {
		checkConversion(t, m)
	}
	checkArchives(t)
}

// TestConvertRefusesTamperedArchive: an archive whose bytes differ from
// its manifest's sha256 is not converted, nothing is written, and a
// backfill over it fails naming it.
func TestConvertRefusesTamperedArchive(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	key, mkey := archiveOf(t, "FourthCoffeeSample")
	body := get(t, key)
	defer put(t, key, body)
	tampered := bytes.Replace(body, []byte("Seattle"), []byte("Tacoma!"), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("nothing to tamper with")
	}
	put(t, key, tampered)
	x := run(t, "convert", map[string]any{"key": key})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ArchiveTampered" || !strings.Contains(x.Cause, "sha256") {
		t.Fatalf("status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	base := strings.TrimSuffix(key, ".xml")
	for _, k := range []string{base + ".geojson", base + ".schema.json", base + ".parquet"} {
		if objectExists(t, k) {
			t.Errorf("%s written from a tampered archive", k)
		}
	}
	if readManifest(t, mkey).Conversion != nil {
		t.Error("the manifest records a conversion of a tampered archive")
	}
	x = run(t, "convert", map[string]any{"prefix": strings.TrimSuffix(key, filepath.Base(key))})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ConversionsFailed" || !strings.Contains(x.Cause, mkey) || !strings.Contains(x.Cause, "ArchiveTampered") {
		t.Errorf("backfill over it: status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	if n := countEntered(x, "Convert"); n < 1 {
		t.Errorf("the backfill converted nothing")
	}
	up, err := env.S3.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(env.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range up.Uploads {
		t.Errorf("multipart upload left over: %s", aws.ToString(u.Key))
	}
}

// TestBackupConversionFailure: when the conversion cannot be recorded the
// backup fails as ConversionFailed; the XML archive and its manifest stay,
// and no output or multipart upload is left.
func TestBackupConversionFailure(t *testing.T) {
	for _, tc := range []struct {
		name, source string
		fault        func(r *http.Request) bool
	}{
		// The GeoJSON of BigSample takes several parts: S3 refuses the
		// second every time.
		{"upload fails midway", bigSample, func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".geojson") && r.URL.Query().Get("partNumber") == "2"
		}},
		// S3 refuses the GeoParquet: the GeoJSON, complete, goes too.
		{"GeoParquet upload fails", "Stores-2019", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".parquet")
		}},
		// Every output is written, but the manifest cannot record them.
		{"manifest update fails", "Stores-2019", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".manifest.json") && r.Header.Get("If-Match") != ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setTiming(t, sdsemu.Timing{})
			var fired atomic.Int64
			env.Stack.Lambda.SetUpstreamFault(func(r *http.Request) (int, string) {
				if tc.fault(r) {
					// Refused outright: the SDK does not retry it, the
					// state machine does.
					fired.Add(1)
					return http.StatusForbidden, "AccessDenied"
				}
				return 0, ""
			})
			defer env.Stack.Lambda.SetUpstreamFault(nil)
			x := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": tc.source})
			if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ConversionFailed" || !strings.Contains(x.Cause, "ArchiveUnavailable") {
				t.Fatalf("status %s error %s cause %s", x.Status, x.Error, x.Cause)
			}
			if fired.Load() == 0 {
				t.Fatal("the fault never fired")
			}
			m := regexp.MustCompile(`s3://[^/]+/(\S+)\.xml `).FindStringSubmatch(x.Cause)
			if m == nil || !objectExists(t, m[1]+".xml") || readManifest(t, m[1]+".xml.manifest.json").Conversion != nil {
				t.Fatalf("the cause names no archive kept without a conversion: %s", x.Cause)
			}
			for _, k := range []string{m[1] + ".geojson", m[1] + ".schema.json", m[1] + ".parquet"} {
				if objectExists(t, k) {
					t.Errorf("%s left behind by a failed conversion", k)
				}
			}
			checkArchives(t)
		})
	}
}

// conversionOutput reports whether key is a conversion output beside an
// archive, and the archive's key without .xml.
func conversionOutput(key string) (string, bool) {
	for _, suffix := range []string{".geojson", ".schema.json", ".parquet"} {
		if strings.HasSuffix(key, suffix) {
			return strings.TrimSuffix(key, suffix), true
		}
	}
	return "", false
}

// checkRecordedOutput: an output in S3 is recorded in its archive's
// manifest with its size and sha256; an unrecorded one is half-written.
func checkRecordedOutput(t *testing.T, key, manifestKey string) {
	t.Helper()
	m := readManifest(t, manifestKey)
	if m.Conversion == nil {
		t.Errorf("%s is not recorded in %s: a half-written conversion", key, manifestKey)
		return
	}
	f := m.Conversion.GeoJSON
	switch {
	case strings.HasSuffix(key, ".schema.json"):
		f = m.Conversion.Schema
	case strings.HasSuffix(key, ".parquet") && m.Conversion.GeoParquet != nil:
		f = m.Conversion.GeoParquet.outputFile
	}
	body := get(t, key)
	if f.Key != key || int64(len(body)) != f.Bytes || sha(body) != f.SHA256 {
		t.Errorf("%s: %d bytes sha256 %s; the manifest records %s with %d bytes %s", key, len(body), sha(body), f.Key, f.Bytes, f.SHA256)
	}
}

// TestConvertUnverifiedArchive: an archive stored with verified: false is
// converted on request all the same, and the record says where it came
// from.
func TestConvertUnverifiedArchive(t *testing.T) {
	setTiming(t, sdsemu.Timing{})
	noTotal(t)
	x := run(t, "backup", map[string]any{"accessId": transitAccessID, "dataSourceName": "EmptyPlaces", "masterKeySecretId": transitSecret})
	if x.Status != sfntypes.ExecutionStatusFailed || x.Error != "ArchiveUnverified" {
		t.Fatalf("status %s error %s cause %s", x.Status, x.Error, x.Cause)
	}
	if countEntered(x, "Convert") != 0 {
		t.Error("the backup converted an unverified archive; it fails before")
	}
	m := regexp.MustCompile(`s3://[^/]+/(\S+\.xml) with its manifest`).FindStringSubmatch(x.Cause)
	if m == nil {
		t.Fatalf("no archive in the cause: %s", x.Cause)
	}
	x = run(t, "convert", map[string]any{"key": m[1]})
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("status %s: %s %s", x.Status, x.Error, x.Cause)
	}
	r := readManifest(t, m[1]+".manifest.json").Conversion
	if r == nil || !r.FromUnverifiedArchive {
		t.Fatalf("record %+v: want one marked fromUnverifiedArchive", r)
	}
	checkConversion(t, m[1]+".manifest.json")
}
