package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/testenv"
)

// One moto_server for the package (testenv), started by the first test
// that needs it, so that checker tests and fuzz workers run without it.
// Every test gets its own bucket.
func TestMain(m *testing.M) { testenv.Main(m) }

// newS3 returns a client for the package's moto.
func newS3(tb testing.TB) *s3.Client {
	tb.Helper()
	return testenv.S3(tb)
}

// newBucket creates a bucket of its own for tb.
func newBucket(tb testing.TB, api *s3.Client) string {
	tb.Helper()
	return testenv.Bucket(tb, api)
}

var jobCreated = time.Date(2025, 3, 31, 23, 30, 0, 0, time.FixedZone("PDT", -7*3600)) // 2025-04-01 in UTC

func testRequest(entities int64) Request {
	return Request{
		AccessID:         "a1b2c3d4e5f6",
		DataSourceName:   "MyDataSourceName",
		JobID:            "0123456789abcdef0123456789abcdef",
		VersionJobID:     "fedcba9876543210fedcba9876543210",
		JobCreated:       jobCreated,
		ExpectedEntities: entities,
		StartedAt:        time.Date(2025, 4, 2, 8, 0, 0, 0, time.UTC),
	}
}

var fixedNow = time.Date(2025, 4, 2, 8, 5, 0, 0, time.UTC)

func newStore(t testing.TB, api S3API, bucket string, cfg Config) *Store {
	t.Helper()
	cfg.Bucket = bucket
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	s, err := New(api, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// What a user can see in the bucket.

func getObject(t *testing.T, api *s3.Client, bucket, key string) (sum string, size int64) {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func readManifest(t *testing.T, api *s3.Client, bucket, key string) Manifest {
	t.Helper()
	out, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get manifest %s: %v", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest does not parse: %v\n%s", err, data)
	}
	// The times are RFC 3339 in UTC as written.
	var raw map[string]any
	json.Unmarshal(data, &raw)
	for _, f := range []string{"startedAt", "finishedAt"} {
		s, _ := raw[f].(string)
		if tm, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") || tm.IsZero() {
			t.Errorf("manifest %s = %q, want RFC 3339 UTC", f, s)
		}
	}
	for _, f := range []string{"formatVersion", "accessId", "dataSourceName", "jobId", "versionJobId", "entityCount", "expectedEntityCount", "bytes", "sha256", "contentType", "bucket", "key"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("manifest has no %s", f)
		}
	}
	return m
}

func assertNoUploads(t *testing.T, api *s3.Client, bucket string) {
	t.Helper()
	out, err := api.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload left behind: key %s id %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
}

func assertNothingStored(t *testing.T, api *s3.Client, bucket string) {
	t.Helper()
	out, err := api.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatalf("list objects: %v", err)
	}
	for _, o := range out.Contents {
		t.Errorf("object stored: %s (%d bytes)", aws.ToString(o.Key), aws.ToInt64(o.Size))
	}
	assertNoUploads(t, api, bucket)
}

// assertCleanMessage: error texts carry no key and no URL query string.
func assertCleanMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, testKey) || regexp.MustCompile(`\?\S*=`).MatchString(msg) {
		t.Errorf("error message leaks a query string: %s", msg)
	}
}

const (
	smallEntities = 40      // about 20 KB: one PutObject
	largeEntities = 12_000  // about 13 MB: three 5 MiB parts
	largePadding  = 600     // bytes of Notes per large entity
	partSize      = 5 << 20 // the smallest S3 allows
	wantKey       = "sds-exports/a1b2c3d4e5f6/MyDataSourceName/2025/04/01/0123456789abcdef0123456789abcdef.xml"
	kmsKeyID      = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
)

func TestCopy(t *testing.T) {
	api := newS3(t)
	cases := []struct {
		name      string
		data      testDataSet
		mode      serveMode
		cfg       Config
		multipart bool
	}{
		{name: "single part", data: testDataSet{Name: "MyDataSourceName", Entities: smallEntities}, mode: serveOK},
		{name: "multipart", data: testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}, mode: serveOK, cfg: Config{PartSize: partSize}, multipart: true},
		{name: "no content length", data: testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}, mode: serveChunked, cfg: Config{PartSize: partSize}, multipart: true},
		{name: "sse-kms", data: testDataSet{Name: "MyDataSourceName", Entities: smallEntities}, mode: serveOK, cfg: Config{KMSKeyID: kmsKeyID}},
		{name: "sse-kms multipart", data: testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}, mode: serveOK, cfg: Config{KMSKeyID: kmsKeyID, PartSize: partSize}, multipart: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t, api)
			src := newTestSource(t, tc.data, tc.mode)
			store := newStore(t, api, bucket, tc.cfg)
			req := testRequest(int64(tc.data.Entities))

			res, err := store.Copy(context.Background(), req, src.open())
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			wantSum := tc.data.SHA256()
			want := Result{Bucket: bucket, Key: wantKey, ManifestKey: wantKey + ".manifest.json",
				Bytes: tc.data.Size(), SHA256: wantSum, EntityCount: int64(tc.data.Entities), Verified: true}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("Result\n got %+v\nwant %+v", res, want)
			}

			// The object is the export, byte for byte.
			gotSum, gotSize := getObject(t, api, bucket, wantKey)
			if gotSum != wantSum || gotSize != tc.data.Size() {
				t.Errorf("object: sha256 %s, %d bytes; export: %s, %d bytes", gotSum, gotSize, wantSum, tc.data.Size())
			}
			head, err := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(wantKey)})
			if err != nil {
				t.Fatal(err)
			}
			if ct := aws.ToString(head.ContentType); ct != "application/xml" {
				t.Errorf("content type %q", ct)
			}
			wantMeta := map[string]string{"sds-access-id": req.AccessID, "sds-data-source": req.DataSourceName,
				"sds-job-id": req.JobID, "sds-version-job-id": req.VersionJobID}
			for k, v := range wantMeta {
				if head.Metadata[k] != v {
					t.Errorf("metadata %s = %q, want %q (all: %v)", k, head.Metadata[k], v, head.Metadata)
				}
			}
			if tc.cfg.KMSKeyID == "" {
				if head.ServerSideEncryption != types.ServerSideEncryptionAes256 {
					t.Errorf("SSE %q, want AES256", head.ServerSideEncryption)
				}
			} else if head.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(head.SSEKMSKeyId) != kmsKeyID {
				t.Errorf("SSE %q key %q, want aws:kms %s", head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), kmsKeyID)
			}
			// A multipart object's ETag ends in -<parts>.
			if isMulti := strings.Contains(aws.ToString(head.ETag), "-"); isMulti != tc.multipart {
				t.Errorf("ETag %s: multipart %v, want %v", aws.ToString(head.ETag), isMulti, tc.multipart)
			}

			m := readManifest(t, api, bucket, want.ManifestKey)
			wantM := Manifest{FormatVersion: 2, AccessID: req.AccessID, DataSourceName: req.DataSourceName, JobID: req.JobID,
				VersionJobID: req.VersionJobID, EntityCount: int64(tc.data.Entities), ExpectedEntityCount: int64(tc.data.Entities),
				Bytes: tc.data.Size(), SHA256: wantSum, ContentType: "application/xml", EntityType: testEntityType,
				SchemaID: tc.data.Name, Verified: true, Restorable: new(true), Bucket: bucket, Key: wantKey,
				StartedAt: req.StartedAt, FinishedAt: fixedNow}
			if !reflect.DeepEqual(m, wantM) {
				t.Errorf("manifest\n got %+v\nwant %+v", m, wantM)
			}
			mhead, err := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &want.ManifestKey})
			if err != nil {
				t.Fatal(err)
			}
			if mhead.ServerSideEncryption != head.ServerSideEncryption {
				t.Errorf("manifest SSE %q, object %q", mhead.ServerSideEncryption, head.ServerSideEncryption)
			}
			assertNoUploads(t, api, bucket)
		})
	}
}

func TestCopyFaults(t *testing.T) {
	api := newS3(t)
	small := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	large := testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}
	type fault struct {
		name     string
		mode     serveMode
		body     string
		expected int64 // ExpectedEntities; -1: the export's count
		class    error
		also     error // a further errors.Is target
		msg      string
	}
	faults := []fault{
		{name: "truncated", mode: serveTruncated, expected: -1, class: ErrSource, also: sds.ErrUnavailable, msg: "broke after"},
		{name: "connection reset", mode: serveReset, expected: -1, class: ErrSource, also: sds.ErrUnavailable, msg: "broke"},
		{name: "longer than content length", mode: serveShortLen, expected: -1, class: ErrIntegrity, msg: "ends inside"},
		{name: "not xml", mode: serveBody, body: `{"resourceSets":[]}`, class: ErrIntegrity, msg: "not XML"},
		{name: "html", mode: serveBody, body: "<html><body>Service Unavailable</body></html>", class: ErrIntegrity, msg: "before its xs:schema"},
		{name: "http 500", mode: serveStatus500, expected: -1, class: ErrSource, also: sds.ErrUnavailable, msg: "HTTP 500"},
	}
	for _, size := range []struct {
		name string
		data testDataSet
	}{{"small", small}, {"multipart", large}} {
		for _, f := range faults {
			if f.mode == serveBody && size.name != "small" {
				continue
			}
			t.Run(size.name+"/"+f.name, func(t *testing.T) {
				bucket := newBucket(t, api)
				src := newTestSource(t, size.data, f.mode)
				src.body = f.body
				obs := &observedS3{Client: api}
				store := newStore(t, obs, bucket, Config{PartSize: partSize})
				expected := f.expected
				if expected < 0 {
					expected = int64(size.data.Entities)
				}
				_, err := store.Copy(context.Background(), testRequest(expected), src.open(sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1})))
				if err == nil {
					t.Fatal("Copy succeeded")
				}
				for _, class := range []error{ErrIntegrity, ErrSource, ErrStorage, ErrInvalidRequest} {
					if errors.Is(err, class) != (class == f.class) {
						t.Errorf("errors.Is(err, %v) = %v; err: %v", class, !(class == f.class), err)
					}
				}
				if f.also != nil && !errors.Is(err, f.also) {
					t.Errorf("errors.Is(err, %v) = false; err: %v", f.also, err)
				}
				if !strings.Contains(err.Error(), f.msg) {
					t.Errorf("error %q does not mention %q", err, f.msg)
				}
				assertCleanMessage(t, err)
				if strings.Contains(err.Error(), "may remain") {
					t.Errorf("the final abort failed: %v", err)
				}
				assertNothingStored(t, api, bucket)
				// The large export fails after parts were uploaded, so
				// the abort path is what left nothing behind.
				if size.name == "multipart" && f.mode != serveStatus500 && (obs.creates.Load() != 1 || obs.aborts.Load() < 1) {
					t.Errorf("%d multipart uploads begun, %d aborts; want 1 and at least 1", obs.creates.Load(), obs.aborts.Load())
				}
				t.Logf("error: %v", err)
			})
		}
	}
}

// TestCopyReusesArchive: a retry of a finished copy downloads nothing and
// leaves the archive as it was.
func TestCopyReusesArchive(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	src := newTestSource(t, data, serveOK)
	store := newStore(t, api, bucket, Config{})
	req := testRequest(int64(data.Entities))

	first, err := store.Copy(context.Background(), req, src.open())
	if err != nil {
		t.Fatal(err)
	}
	head1, _ := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &first.Key})
	manifest1 := readManifest(t, api, bucket, first.ManifestKey)

	// A retry on another day: the job's creation date still names the key.
	store.cfg.Now = func() time.Time { return fixedNow.Add(48 * time.Hour) }
	opened := false
	second, err := store.Copy(context.Background(), req, func(context.Context) (Export, error) {
		opened = true
		return Export{}, errors.New("must not be called")
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened {
		t.Error("the export was opened again")
	}
	want := first
	want.Reused = true
	if !reflect.DeepEqual(second, want) {
		t.Errorf("second Result %+v, want %+v", second, want)
	}
	head2, _ := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &first.Key})
	if aws.ToString(head1.ETag) != aws.ToString(head2.ETag) || !aws.ToTime(head1.LastModified).Equal(aws.ToTime(head2.LastModified)) {
		t.Error("the object was rewritten")
	}
	if m := readManifest(t, api, bucket, first.ManifestKey); !reflect.DeepEqual(m, manifest1) {
		t.Errorf("manifest changed: %+v", m)
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("SDS asked %d times, want 1", n)
	}
}

// TestCopyRecovers: what an interrupted earlier run left behind is
// replaced by a complete archive.
func TestCopyRecovers(t *testing.T) {
	api := newS3(t)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	req := testRequest(int64(data.Entities))
	put := func(t *testing.T, bucket, key, body string) {
		t.Helper()
		if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	staleManifest := func(bucket string, bytes int64, jobID string) string {
		m := Manifest{FormatVersion: 1, AccessID: req.AccessID, DataSourceName: req.DataSourceName, JobID: jobID,
			EntityCount: int64(data.Entities), Bytes: bytes, SHA256: strings.Repeat("0", 64), Bucket: bucket, Key: wantKey}
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, bucket string)
	}{
		{"object without manifest", func(t *testing.T, bucket string) {
			put(t, bucket, wantKey, "<MainRoot>partial")
		}},
		{"manifest without object", func(t *testing.T, bucket string) {
			put(t, bucket, wantKey+".manifest.json", staleManifest(bucket, data.Size(), req.JobID))
		}},
		{"manifest disagrees with object size", func(t *testing.T, bucket string) {
			put(t, bucket, wantKey, "<MainRoot>partial")
			put(t, bucket, wantKey+".manifest.json", staleManifest(bucket, data.Size(), req.JobID))
		}},
		{"manifest of another job", func(t *testing.T, bucket string) {
			put(t, bucket, wantKey, "<MainRoot>partial")
			put(t, bucket, wantKey+".manifest.json", staleManifest(bucket, int64(len("<MainRoot>partial")), "otherjob"))
		}},
		{"manifest does not parse", func(t *testing.T, bucket string) {
			put(t, bucket, wantKey, "<MainRoot>partial")
			put(t, bucket, wantKey+".manifest.json", "{not json")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t, api)
			tc.setup(t, bucket)
			src := newTestSource(t, data, serveOK)
			store := newStore(t, api, bucket, Config{})
			res, err := store.Copy(context.Background(), req, src.open())
			if err != nil {
				t.Fatal(err)
			}
			if res.Reused || src.calls.Load() != 1 {
				t.Errorf("Reused %v after %d downloads, want a fresh copy", res.Reused, src.calls.Load())
			}
			if sum, size := getObject(t, api, bucket, wantKey); sum != data.SHA256() || size != data.Size() {
				t.Errorf("object not replaced: %d bytes", size)
			}
			if m := readManifest(t, api, bucket, res.ManifestKey); m.SHA256 != data.SHA256() || m.Bytes != data.Size() || m.JobID != req.JobID {
				t.Errorf("manifest not replaced: %+v", m)
			}
		})
	}
}

// observedS3 is the real client, counting multipart uploads begun and
// aborted; with failFirstAbort its first AbortMultipartUpload fails, as it
// would when the network drops at the wrong moment.
type observedS3 struct {
	*s3.Client
	failFirstAbort bool
	creates        atomic.Int32
	aborts         atomic.Int32
}

func (o *observedS3) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, opts ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	o.creates.Add(1)
	return o.Client.CreateMultipartUpload(ctx, in, opts...)
}

func (o *observedS3) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, opts ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	if o.aborts.Add(1) == 1 && o.failFirstAbort {
		return nil, errors.New("simulated network failure")
	}
	return o.Client.AbortMultipartUpload(ctx, in, opts...)
}

func TestCopyAbortsWhenTheUploaderCouldNot(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}
	src := newTestSource(t, data, serveTruncated)
	wrapped := &observedS3{Client: api, failFirstAbort: true}
	store := newStore(t, wrapped, bucket, Config{PartSize: partSize})
	_, err := store.Copy(context.Background(), testRequest(int64(data.Entities)), src.open())
	if !errors.Is(err, ErrSource) {
		t.Fatalf("err %v, want ErrSource", err)
	}
	if n := wrapped.aborts.Load(); n != 2 {
		t.Errorf("%d aborts, want the uploader's and ours", n)
	}
	assertNothingStored(t, api, bucket)
}

// TestCopyCancelled: a copy cancelled mid-stream leaves nothing behind,
// although the uploader's own abort runs with the cancelled context.
func TestCopyCancelled(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}
	src := newTestSource(t, data, serveOK)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obs := &observedS3{Client: api}
	store := newStore(t, obs, bucket, Config{PartSize: partSize})
	// Cancel once the uploader has read past its first part: by then the
	// multipart upload has begun, whatever the scheduling.
	open := func(ctx context.Context) (Export, error) {
		exp, err := src.open()(ctx)
		if err == nil {
			exp.Body = &cancelAfter{ReadCloser: exp.Body, at: partSize + partSize/2, cancel: cancel}
		}
		return exp, err
	}
	_, err := store.Copy(ctx, testRequest(int64(data.Entities)), open)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled in the chain", err)
	}
	if obs.creates.Load() != 1 {
		t.Errorf("%d multipart uploads begun, want 1 (cancelled mid-upload)", obs.creates.Load())
	}
	if !errors.Is(err, ErrSource) && !errors.Is(err, ErrStorage) {
		t.Errorf("err %v is neither ErrSource nor ErrStorage", err)
	}
	assertNothingStored(t, api, bucket)
}

func TestCopyStorageFailure(t *testing.T) {
	api := newS3(t)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	src := newTestSource(t, data, serveOK)
	store := newStore(t, api, "no-such-bucket-for-archive-tests", Config{})
	_, err := store.Copy(context.Background(), testRequest(0), src.open())
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("err %v, want ErrStorage", err)
	}
	var nsb *types.NoSuchBucket
	if !errors.As(err, &nsb) && !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("err %v does not say the bucket is missing", err)
	}
	assertCleanMessage(t, err)
}

func TestCopyInvalidRequest(t *testing.T) {
	api := newS3(t)
	store := newStore(t, api, "unused", Config{})
	mutate := map[string]func(*Request){
		"empty access id":   func(r *Request) { r.AccessID = "" },
		"slash in name":     func(r *Request) { r.DataSourceName = "a/b" },
		"slash in job id":   func(r *Request) { r.JobID = "../x" },
		"empty job id":      func(r *Request) { r.JobID = "" },
		"no job time":       func(r *Request) { r.JobCreated = time.Time{} },
		"negative expected": func(r *Request) { r.ExpectedEntities = -2 },
	}
	for name, f := range mutate {
		t.Run(name, func(t *testing.T) {
			req := testRequest(1)
			f(&req)
			_, err := store.Copy(context.Background(), req, func(context.Context) (Export, error) {
				t.Error("open called")
				return Export{}, errors.New("no")
			})
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("err %v, want ErrInvalidRequest", err)
			}
		})
	}
}

func TestNewAndKeys(t *testing.T) {
	api := s3.New(s3.Options{Region: "us-east-1"})
	for _, cfg := range []Config{{}, {Bucket: "b", PartSize: 1 << 20}, {Bucket: "b", Concurrency: -1}} {
		if _, err := New(api, cfg); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("New(%+v): err %v, want ErrInvalidRequest", cfg, err)
		}
	}
	if _, err := New(nil, Config{Bucket: "b"}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("New(nil): err %v", err)
	}
	for prefix, want := range map[string]string{
		"":        wantKey,
		"backups": "backups/a1b2c3d4e5f6/MyDataSourceName/2025/04/01/0123456789abcdef0123456789abcdef.xml",
		"x/y/":    "x/y/a1b2c3d4e5f6/MyDataSourceName/2025/04/01/0123456789abcdef0123456789abcdef.xml",
	} {
		s, err := New(api, Config{Bucket: "b", Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		key, mkey := s.Keys(testRequest(0))
		if key != want || mkey != want+".manifest.json" {
			t.Errorf("prefix %q: keys %s, %s; want %s", prefix, key, mkey, want)
		}
	}
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		`Put "http://127.0.0.1:5000/b/k.xml?partNumber=2&uploadId=abc&X-Amz-Credential=AKIA": connection refused`: `Put "http://127.0.0.1:5000/b/k.xml?…": connection refused`,
		`GET https://h/REST/v1/x?key=secret failed`:                                                               `GET https://h/REST/v1/x?… failed`,
		`what? no query here`: `what? no query here`,
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	err := classed(ErrStorage, "upload", fmt.Errorf("op: %w", errors.New(`Put "http://h/b?uploadId=1": EOF`)))
	if msg := err.Error(); msg != `upload: storage failed: op: Put "http://h/b?…": EOF` {
		t.Errorf("message %q", msg)
	}
	if !errors.Is(err, ErrStorage) || errors.Is(err, ErrSource) {
		t.Error("class lost")
	}
}

// cancelAfter calls cancel once at bytes have been read through it.
type cancelAfter struct {
	io.ReadCloser
	n, at  int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	if c.n >= c.at {
		c.cancel()
	}
	return n, err
}

// A copy killed mid-upload (a Lambda timeout) cannot abort its multipart
// upload; the next attempt for the same job aborts it before starting.
func TestCopyAbortsUploadOfKilledAttempt(t *testing.T) {
	ctx := context.Background()
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	src := newTestSource(t, data, serveOK)
	store := newStore(t, api, bucket, Config{})
	req := testRequest(int64(data.Entities))
	key, _ := store.Keys(req)
	up, err := api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: ptr(int32(1)), Body: strings.NewReader("partial")}); err != nil {
		t.Fatal(err)
	}
	// Another job's upload under a longer key with the same prefix stays.
	otherKey := key + ".other"
	other, err := api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &otherKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Copy(ctx, req, src.open()); err != nil {
		t.Fatal(err)
	}
	out, err := api.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 1 || deref(out.Uploads[0].UploadId) != deref(other.UploadId) {
		t.Errorf("uploads left: %d, want only the other key's", len(out.Uploads))
	}
}
