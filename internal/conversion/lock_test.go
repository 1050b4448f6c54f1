package conversion_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/localaws"
	"github.com/sdsops/sdsops/internal/testenv"
)

var retention = archive.Retention{Mode: types.ObjectLockModeCompliance, Days: 2}

// refuseManifestUpdate makes S3 refuse (403) the conditional PUT of a
// manifest, which is how a conversion records itself, while refuse is set.
type refuseManifestUpdate struct{ refuse atomic.Bool }

func (f *refuseManifestUpdate) Do(r *http.Request) (*http.Response, error) {
	if f.refuse.Load() && r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, archive.ManifestSuffix) && r.Header.Get("If-Match") != "" {
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(`<Error><Code>AccessDenied</Code><Message>refused by the test</Message></Error>`)), Request: r}, nil
	}
	return http.DefaultClient.Do(r)
}

// setupLocked archives the sample export into a bucket with Object Lock,
// with retention, and returns a Converter for it.
func setupLocked(t *testing.T) (conv *conversion.Converter, api *s3.Client, bucket, mkey string, fault *refuseManifestUpdate) {
	t.Helper()
	doc, err := os.ReadFile("../geojson/testdata/load-data-source-data-schema-and-sample-input-3.xml")
	if err != nil {
		t.Fatal(err)
	}
	fault = &refuseManifestUpdate{}
	api = localaws.NewS3Client(testenv.AWS(t), func(o *s3.Options) { o.HTTPClient = fault })
	bucket = testenv.LockedBucket(t, api)
	store, err := archive.New(api, archive.Config{Bucket: bucket, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.Copy(context.Background(), archive.Request{AccessID: "a1", DataSourceName: "FourthCoffeeSample", JobID: "j1", JobCreated: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), ExpectedEntities: 2},
		func(context.Context) (archive.Export, error) {
			return archive.Export{Body: io.NopCloser(bytes.NewReader(doc)), Length: int64(len(doc))}, nil
		})
	if err != nil && !errors.Is(err, archive.ErrUnverified) {
		t.Fatal(err)
	}
	return conversion.New(api, store), api, bucket, res.ManifestKey, fault
}

// versions lists key's versions (not delete markers), newest first.
func versions(t *testing.T, api *s3.Client, bucket, key string) []types.ObjectVersion {
	t.Helper()
	out, err := api.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &key})
	if err != nil {
		t.Fatal(err)
	}
	var vs []types.ObjectVersion
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			vs = append(vs, v)
		}
	}
	return vs
}

// lockOf is the retention of one version of key.
func lockOf(t *testing.T, api *s3.Client, bucket, key, version string) (types.ObjectLockMode, time.Time) {
	t.Helper()
	h, err := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key, VersionId: &version})
	if err != nil {
		t.Fatalf("head %s version %s: %v", key, version, err)
	}
	return h.ObjectLockMode, aws.ToTime(h.ObjectLockRetainUntilDate)
}

// TestConversionUnderObjectLock: the outputs and every manifest version
// are locked; the manifest's conditional update makes a new, locked
// version and the copy's version stays, locked and readable; concurrent
// conversions and a GeoParquet backfill work as without a lock.
func TestConversionUnderObjectLock(t *testing.T) {
	conv, api, bucket, mkey, _ := setupLocked(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { _, errs[i] = conv.Convert(ctx, mkey) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rec := manifestRecord(t, api, bucket, mkey)
	if rec == nil || rec.GeoParquet == nil {
		t.Fatalf("record %+v", rec)
	}
	soon := time.Now().Add(time.Duration(retention.Days)*24*time.Hour - time.Hour)
	for _, key := range []string{rec.GeoJSON.Key, rec.Schema.Key, rec.GeoParquet.Key, mkey} {
		vs := versions(t, api, bucket, key)
		if len(vs) == 0 {
			t.Fatalf("%s: no version", key)
		}
		for _, v := range vs {
			if mode, until := lockOf(t, api, bucket, key, aws.ToString(v.VersionId)); mode != retention.Mode || until.Before(soon) {
				t.Errorf("%s version %s: lock %q until %v, want %s for %d days", key, aws.ToString(v.VersionId), mode, until, retention.Mode, retention.Days)
			}
		}
	}
	mv := versions(t, api, bucket, mkey)
	if len(mv) < 2 {
		t.Fatalf("manifest has %d versions: the conversion's update must be a new version", len(mv))
	}
	first := mv[len(mv)-1]
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &mkey, VersionId: first.VersionId})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if bytes.Contains(data, []byte(`"conversion"`)) || !bytes.Contains(data, []byte(`"sha256"`)) {
		t.Errorf("the copy's manifest version is not the one copytos3 wrote:\n%s", data)
	}

	// A backfill (the manifest as a conversion before GeoParquet left it)
	// writes one more locked version.
	cur, etag := getObject(t, api, bucket, mkey)
	cur = bytes.Replace(cur, []byte(`"geoparquet"`), []byte(`"geoparquetGone"`), 1)
	put := &s3.PutObjectInput{Bucket: &bucket, Key: &mkey, Body: bytes.NewReader(cur), IfMatch: &etag, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}
	if _, err := api.PutObject(ctx, put); err != nil {
		t.Fatal(err)
	}
	before := len(versions(t, api, bucket, mkey))
	res, err := conv.Convert(ctx, mkey)
	if err != nil || res.Reused || res.Record.GeoParquet == nil {
		t.Fatalf("backfill: %+v, %v", res, err)
	}
	vs := versions(t, api, bucket, mkey)
	if len(vs) != before+1 {
		t.Fatalf("manifest versions %d after the backfill, %d before", len(vs), before)
	}
	if mode, _ := lockOf(t, api, bucket, mkey, aws.ToString(vs[0].VersionId)); mode != retention.Mode {
		t.Errorf("the backfill's manifest version: lock %q", mode)
	}
}

// TestFailedConversionUnderObjectLock: a conversion whose manifest update
// is refused removes its outputs from view (a delete marker: their locked
// versions stay until the retention ends) and fails; the next conversion
// records new outputs.
func TestFailedConversionUnderObjectLock(t *testing.T) {
	conv, api, bucket, mkey, fault := setupLocked(t)
	ctx := context.Background()
	fault.refuse.Store(true)
	_, err := conv.Convert(ctx, mkey)
	fault.refuse.Store(false)
	if !errors.Is(err, conversion.ErrStorage) {
		t.Fatalf("convert with the manifest update refused: %v, want ErrStorage", err)
	}
	base := strings.TrimSuffix(mkey, ".xml"+archive.ManifestSuffix)
	for _, key := range []string{base + conversion.GeoJSONSuffix, base + conversion.SchemaSuffix, base + conversion.GeoParquetSuffix} {
		if _, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
			t.Errorf("%s still in view after the failed conversion", key)
		}
		for _, v := range versions(t, api, bucket, key) {
			if mode, _ := lockOf(t, api, bucket, key, aws.ToString(v.VersionId)); mode != retention.Mode {
				t.Errorf("%s version %s: lock %q, want %s", key, aws.ToString(v.VersionId), mode, retention.Mode)
			}
		}
	}
	if rec := manifestRecord(t, api, bucket, mkey); rec != nil {
		t.Fatalf("a failed conversion is recorded: %+v", rec)
	}
	res, err := conv.Convert(ctx, mkey)
	if err != nil || res.Reused {
		t.Fatalf("the next conversion: %+v, %v", res, err)
	}
	for _, f := range []conversion.File{res.Record.GeoJSON, res.Record.Schema, res.Record.GeoParquet.File} {
		if _, etag := getObject(t, api, bucket, f.Key); etag != f.ETag {
			t.Errorf("%s: etag %s, recorded %s", f.Key, etag, f.ETag)
		}
	}
}
