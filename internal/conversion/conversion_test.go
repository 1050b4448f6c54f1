package conversion_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// setup archives the documentation's sample export in a bucket of its
// own and returns a Converter for it, its client, the bucket and the
// archive's manifest key.
func setup(t *testing.T) (conv *conversion.Converter, api *s3.Client, bucket, mkey string) {
	t.Helper()
	doc, err := os.ReadFile("../geojson/testdata/load-data-source-data-schema-and-sample-input-3.xml")
	if err != nil {
		t.Fatal(err)
	}
	return setupWith(t, doc)
}

// setupWith is setup with another export of the sample's two entities.
func setupWith(t *testing.T, doc []byte) (conv *conversion.Converter, api *s3.Client, bucket, mkey string) {
	t.Helper()
	api = testenv.S3(t)
	bucket = testenv.Bucket(t, api)
	ctx := context.Background()
	store, err := archive.New(api, archive.Config{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.Copy(ctx, archive.Request{AccessID: "a1", DataSourceName: "FourthCoffeeSample", JobID: "j1", JobCreated: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), ExpectedEntities: 2},
		func(context.Context) (archive.Export, error) {
			return archive.Export{Body: io.NopCloser(bytes.NewReader(doc)), Length: int64(len(doc))}, nil
		})
	if err != nil && !errors.Is(err, archive.ErrUnverified) {
		t.Fatal(err)
	}
	return conversion.New(api, store), api, bucket, res.ManifestKey
}

func manifestRecord(t *testing.T, api *s3.Client, bucket, mkey string) *conversion.Record {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &mkey})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	var m struct{ Conversion *conversion.Record }
	if err := json.NewDecoder(out.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Conversion
}

// Two conversions of one archive at once both succeed, and the manifest
// records outputs that are in place.
func TestConcurrentConversions(t *testing.T) {
	conv, api, bucket, mkey := setup(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = conv.Convert(context.Background(), mkey)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	rec := manifestRecord(t, api, bucket, mkey)
	if rec == nil || rec.Features != 2 {
		t.Fatalf("record %+v", rec)
	}
	res, err := conv.Convert(context.Background(), mkey)
	if err != nil || !res.Reused {
		t.Fatalf("a later convert: reused %v, %v; the recorded outputs must be in place", res.Reused, err)
	}
}

// A record whose output is gone or replaced is not trusted: the archive
// is converted again.
func TestMissingOutputConvertedAgain(t *testing.T) {
	conv, api, bucket, mkey := setup(t)
	first, err := conv.Convert(context.Background(), mkey)
	if err != nil || first.Reused {
		t.Fatalf("reused %v, %v", first.Reused, err)
	}
	if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: &first.Record.GeoJSON.Key, Body: bytes.NewReader([]byte("{}"))}); err != nil {
		t.Fatal(err)
	}
	again, err := conv.Convert(context.Background(), mkey)
	if err != nil || again.Reused {
		t.Fatalf("after the GeoJSON was replaced: reused %v, %v", again.Reused, err)
	}
	if again.Record.GeoJSON.SHA256 != first.Record.GeoJSON.SHA256 || again.Record.GeoJSON.ETag == "" {
		t.Errorf("converted again to %+v, first %+v", again.Record.GeoJSON, first.Record.GeoJSON)
	}
}

// Keys that are not an archive's manifest under the prefix are refused
// before anything is read.
func TestNotAnArchive(t *testing.T) {
	conv, _, _, mkey := setup(t)
	for _, k := range []string{"other/a.xml.manifest.json", "sds-exports/a1/x.json", mkey + "x"} {
		if _, err := conv.Convert(context.Background(), k); !errors.Is(err, conversion.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", k, err)
		}
	}
	if _, err := conv.Convert(context.Background(), "sds-exports/a1/FourthCoffeeSample/2025/04/01/none.xml.manifest.json"); !errors.Is(err, conversion.ErrNotFound) {
		t.Errorf("a missing manifest: %v, want ErrNotFound", err)
	}
}

// An archive holding a 2 MB geography of GEOMETRYCOLLECTIONs nested
// 100,000 deep converts well within a function's deadline; the manifest
// counts the value as an invalid geometry.
func TestDeeplyNestedGeography(t *testing.T) {
	doc, err := os.ReadFile("../geojson/testdata/load-data-source-data-schema-and-sample-input-3.xml")
	if err != nil {
		t.Fatal(err)
	}
	const at = "<Latitude>47.640568390488625</Latitude>"
	deep := strings.Repeat("GEOMETRYCOLLECTION(", 100_000) + "POINT(1 2)" + strings.Repeat(")", 100_000)
	if !bytes.Contains(doc, []byte(at)) {
		t.Fatal("the sample changed")
	}
	doc = bytes.Replace(doc, []byte(at), []byte(at+"<StoreLayout>"+deep+"</StoreLayout>"), 1)
	conv, api, bucket, mkey := setupWith(t, doc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := conv.Convert(ctx, mkey); err != nil {
		t.Fatal(err)
	}
	if rec := manifestRecord(t, api, bucket, mkey); rec == nil || rec.Features != 2 || rec.Invalid != 1 {
		t.Fatalf("record %+v: want 2 features, one invalid geometry", rec)
	}
}

// getObject returns the stored object's bytes and ETag.
func getObject(t *testing.T, api *s3.Client, bucket, key string) ([]byte, string) {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, aws.ToString(out.ETag)
}

// The GeoParquet is stored beside the GeoJSON and recorded in the
// manifest with its size, sha256, rows and row groups.
func TestGeoParquetRecorded(t *testing.T) {
	conv, api, bucket, mkey := setup(t)
	res, err := conv.Convert(context.Background(), mkey)
	if err != nil {
		t.Fatal(err)
	}
	rec := manifestRecord(t, api, bucket, mkey)
	pq := rec.GeoParquet
	if pq == nil || pq.Key != strings.TrimSuffix(res.Key, ".xml")+".parquet" || pq.ContentType != conversion.GeoParquetContentType {
		t.Fatalf("GeoParquet recorded as %+v", pq)
	}
	data, etag := getObject(t, api, bucket, pq.Key)
	sum := sha256.Sum256(data)
	if int64(len(data)) != pq.Bytes || hex.EncodeToString(sum[:]) != pq.SHA256 || etag != pq.ETag {
		t.Errorf("stored %d bytes sha256 %x etag %s, recorded %+v", len(data), sum, etag, pq)
	}
	if pq.Rows != 2 || pq.RowGroups != 1 || !bytes.HasPrefix(data, []byte("PAR1")) {
		t.Errorf("%d rows in %d row groups, want 2 in 1", pq.Rows, pq.RowGroups)
	}
}

// An archive converted before GeoParquet was written gets it from the
// next conversion, its GeoJSON and schema document left as they are.
func TestGeoParquetBackfill(t *testing.T) {
	conv, api, bucket, mkey := setup(t)
	first, err := conv.Convert(context.Background(), mkey)
	if err != nil {
		t.Fatal(err)
	}
	// The manifest as a conversion before GeoParquet left it.
	data, etag := getObject(t, api, bucket, mkey)
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw["conversion"].(map[string]any), "geoparquet")
	data, _ = json.Marshal(raw)
	if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &mkey, Body: bytes.NewReader(data), IfMatch: &etag}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &first.Record.GeoParquet.Key}); err != nil {
		t.Fatal(err)
	}
	_, gjETag := getObject(t, api, bucket, first.Record.GeoJSON.Key)

	res, err := conv.Convert(context.Background(), mkey)
	if err != nil || res.Reused {
		t.Fatalf("backfill: reused %v, %v", res.Reused, err)
	}
	rec := manifestRecord(t, api, bucket, mkey)
	if rec.GeoParquet == nil || rec.GeoParquet.Rows != 2 {
		t.Fatalf("no GeoParquet recorded: %+v", rec.GeoParquet)
	}
	if _, now := getObject(t, api, bucket, first.Record.GeoJSON.Key); now != gjETag || rec.GeoJSON != first.Record.GeoJSON || rec.Schema != first.Record.Schema {
		t.Errorf("the GeoJSON was rewritten: etag %s, was %s; record %+v", now, gjETag, rec.GeoJSON)
	}
	if _, etag := getObject(t, api, bucket, rec.GeoParquet.Key); etag != rec.GeoParquet.ETag {
		t.Errorf("GeoParquet etag %s, recorded %s", etag, rec.GeoParquet.ETag)
	}
	if again, err := conv.Convert(context.Background(), mkey); err != nil || !again.Reused {
		t.Errorf("after the backfill: reused %v, %v", again.Reused, err)
	}
}
