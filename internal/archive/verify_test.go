package archive

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/sds"
)

// TestCopyUnverified: an export that arrived complete is always stored
// with its manifest; the manifest vouches for it only when every check
// passed, and Copy reports ErrUnverified with the reasons otherwise.
func TestCopyUnverified(t *testing.T) {
	api := newS3(t)
	data := testDataSet{Name: "MyDataSourceName", Entities: 5}
	good := data.String()
	entity := "<" + testEntityType + ">"
	cases := []struct {
		name     string
		body     string
		expected int64
		reasons  []string // "" for a verified archive
	}{
		{"all checks pass", good, 5, nil},
		{"the job reported more", good, 6, []string{"the export has 5 entities, the job reported 6"}},
		{"the job reported fewer", good, 4, []string{"the export has 5 entities, the job reported 4"}},
		{"the job reported no total", good, dataset.NoTotal, []string{"the job reported no total"}},
		{"the job reported 0", good, 0, []string{"the export has 5 entities, the job reported 0"}},
		{"empty data source", testDataSet{Name: "MyDataSourceName"}.String(), 0, nil},
		{"schema of another data source", strings.Replace(good, `id="MyDataSourceName"`, `id="OtherSource"`, 1), 5, []string{`describes data source "OtherSource"`}},
		{"undefined entity", strings.Replace(good, "<Locality>", "<Locality>&nbsp;", 1), 5, []string{"1 undefined entity references (the first &nbsp;)"}},
		{"bare ampersand", strings.Replace(good, "<Locality>", "<Locality>A & B ", 2), 5, []string{"2 bare '&'"}},
		{"invalid UTF-8", strings.Replace(good, "<Locality>", "<Locality>caf\xe9 ", 1), 5, []string{"invalid UTF-8"}},
		{"another element among the entities", strings.Replace(good, entity, "<Stray/>"+entity, 1), 5, []string{"1 elements other than <MyDataSourceEntityType>"}},
		{"several at once", strings.Replace(good, "<Locality>", "<Locality>&bogus;", 1), dataset.NoTotal, []string{"undefined entity", "no total"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t, api)
			src := newTestSource(t, data, serveBody)
			src.body = tc.body
			store := newStore(t, api, bucket, Config{})
			res, err := store.Copy(context.Background(), testRequest(tc.expected), src.open())
			if tc.reasons == nil {
				if err != nil || !res.Verified {
					t.Fatalf("err %v, verified %v", err, res.Verified)
				}
			} else if !errors.Is(err, ErrUnverified) || res.Verified {
				t.Fatalf("err %v, verified %v; want ErrUnverified", err, res.Verified)
			}
			// Stored either way, byte for byte, with its manifest.
			sum := sha256.Sum256([]byte(tc.body))
			if got, n := getObject(t, api, bucket, wantKey); got != hex.EncodeToString(sum[:]) || n != int64(len(tc.body)) {
				t.Errorf("stored %s, %d bytes; sent %x, %d", got, n, sum, len(tc.body))
			}
			m := readManifest(t, api, bucket, wantKey+".manifest.json")
			if m.Verified != (tc.reasons == nil) || len(m.Problems) != len(res.Problems) {
				t.Errorf("manifest verified %v problems %q; result %v %q", m.Verified, m.Problems, res.Verified, res.Problems)
			}
			all := strings.Join(m.Problems, "\n")
			for _, r := range tc.reasons {
				if !strings.Contains(all, r) || !strings.Contains(err.Error(), r) {
					t.Errorf("reason %q missing: manifest %q, error %v", r, m.Problems, err)
				}
			}
			// A second copy reuses the archive and reports the same outcome.
			again, err2 := store.Copy(context.Background(), testRequest(tc.expected), src.open())
			if !again.Reused || errors.Is(err2, ErrUnverified) != (tc.reasons != nil) || again.Verified != res.Verified {
				t.Errorf("second copy: reused %v verified %v err %v", again.Reused, again.Verified, err2)
			}
		})
	}
}

// packedSource serves the export packed as the service may: a ZIP
// archive holding one XML file, or gzip with Content-Encoding.
func packedSource(t *testing.T, body []byte, encoding, contentType string) *testSource {
	s := &testSource{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if encoding != "" {
			w.Header().Set("Content-Encoding", encoding)
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func zipOf(t *testing.T, name string, files ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i, f := range files {
		w, err := zw.Create(name + strings.Repeat("x", i))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipOf(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// TestCopyPackedDeliveries: a ZIP or gzip delivery is stored as the XML
// inside, verified like any export, with the received bytes described in
// the manifest. A corrupt packing stores nothing.
func TestCopyPackedDeliveries(t *testing.T) {
	api := newS3(t)
	data := testDataSet{Name: "MyDataSourceName", Entities: 300}
	xmlDoc := "\ufeff" + data.String() // with a byte order mark, as .NET writes
	zipped := zipOf(t, "MyDataSourceName.xml", xmlDoc)
	gzipped := gzipOf(xmlDoc)
	corruptZip := bytes.Clone(zipped)
	corruptZip[len(corruptZip)/2] ^= 0xff
	cases := []struct {
		name, encoding, contentType string
		body                        []byte
		wantEncoding                string
		fail                        string
	}{
		{"zip", "", "application/zip", zipped, sds.EncodingZip, ""},
		{"gzip", "gzip", "application/xml", gzipped, sds.EncodingGzip, ""},
		{"zip of two files", "", "application/zip", zipOf(t, "a.xml", xmlDoc, xmlDoc), "", "more than one file"},
		{"corrupt zip", "", "application/zip", corruptZip, "", "integrity check failed"},
		{"cut gzip", "gzip", "application/xml", gzipped[:len(gzipped)-10], "", "gzip delivery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t, api)
			src := packedSource(t, tc.body, tc.encoding, tc.contentType)
			store := newStore(t, api, bucket, Config{})
			res, err := store.Copy(context.Background(), testRequest(int64(data.Entities)), src.open())
			if tc.fail != "" {
				if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), tc.fail) {
					t.Fatalf("err %v, want an integrity error mentioning %q", err, tc.fail)
				}
				assertNothingStored(t, api, bucket)
				return
			}
			if err != nil || !res.Verified {
				t.Fatalf("err %v verified %v", err, res.Verified)
			}
			xmlSum := sha256.Sum256([]byte(xmlDoc))
			rawSum := sha256.Sum256(tc.body)
			if got, n := getObject(t, api, bucket, res.Key); got != hex.EncodeToString(xmlSum[:]) || n != int64(len(xmlDoc)) {
				t.Errorf("stored %s (%d bytes), want the XML inside (%d bytes)", got, n, len(xmlDoc))
			}
			head, _ := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &res.Key})
			m := readManifest(t, api, bucket, res.ManifestKey)
			d := m.Delivery
			if d == nil || d.Encoding != tc.wantEncoding || d.Bytes != int64(len(tc.body)) || d.SHA256 != hex.EncodeToString(rawSum[:]) || d.ContentType != tc.contentType {
				t.Fatalf("manifest delivery %+v", d)
			}
			if m.ContentType != "application/xml" || aws.ToString(head.ContentType) != "application/xml" || m.SHA256 != hex.EncodeToString(xmlSum[:]) || m.EntityCount != int64(data.Entities) {
				t.Errorf("manifest %+v, object content type %q", m, aws.ToString(head.ContentType))
			}
			t.Logf("%s delivery of %d bytes: stored %d bytes of %s; manifest delivery %+v", tc.name, len(tc.body), m.Bytes, m.ContentType, *d)
		})
	}
}

// TestCopyConcurrentCopiesOneArchive: copies of the same job started at
// the same instant download and store the export once: exactly one reports
// a new archive, every other one that archive with reused: true, and the
// versioned bucket holds one version of the object and of its manifest.
func TestCopyConcurrentCopiesOneArchive(t *testing.T) {
	for _, tc := range []struct {
		name string
		data testDataSet
	}{
		{"one PutObject", testDataSet{Name: "MyDataSourceName", Entities: smallEntities}},
		{"multipart", testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newS3(t)
			bucket := newBucket(t, api)
			if _, err := api.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: &bucket,
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
				t.Fatal(err)
			}
			src := newTestSource(t, tc.data, serveOK)
			store := newStore(t, api, bucket, Config{PartSize: partSize})
			const n = 6
			var wg sync.WaitGroup
			results := make([]Result, n)
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[i], errs[i] = store.Copy(context.Background(), testRequest(int64(tc.data.Entities)), src.open())
				}()
			}
			close(start)
			wg.Wait()
			fresh := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("copy %d: %v", i, errs[i])
				}
				if !results[i].Reused {
					fresh++
				}
				if results[i].SHA256 != tc.data.SHA256() || results[i].Key != wantKey {
					t.Errorf("copy %d reports %s %s", i, results[i].Key, results[i].SHA256)
				}
			}
			objects, manifests := versions(t, api, bucket, wantKey), versions(t, api, bucket, wantKey+".manifest.json")
			t.Logf("%d of %d concurrent copies won; %d SDS downloads; %d object versions, %d manifest versions",
				fresh, n, src.calls.Load(), objects, manifests)
			if fresh != 1 {
				t.Errorf("%d copies report a new archive, want exactly 1", fresh)
			}
			if objects != 1 || manifests != 1 || src.calls.Load() != 1 {
				t.Errorf("%d object versions, %d manifest versions after %d downloads; want one of each", objects, manifests, src.calls.Load())
			}
			if exists(t, api, bucket, wantKey+ClaimSuffix) {
				t.Error("the claim was left behind")
			}
			assertNoUploads(t, api, bucket)
		})
	}
}

// versions counts the stored versions of key (delete markers aside).
func versions(t *testing.T, api *s3.Client, bucket, key string) int {
	t.Helper()
	out, err := api.ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &key})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Versions {
		if aws.ToString(v.Key) == key {
			n++
		}
	}
	return n
}

// TestCopyLateWriterNotReused: an object of the same length but other
// bytes than the manifest records is not vouched for: it is copied again.
func TestCopyLateWriterNotReused(t *testing.T) {
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
	// A late writer puts bytes of the same length, with the same metadata.
	other := []byte(strings.Replace(data.String(), "<Locality>", "<Locality>X", 1))
	other = other[:len(other)-1]
	if int64(len(other)) != first.Bytes {
		t.Fatalf("test bytes %d, archive %d", len(other), first.Bytes)
	}
	if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &first.Key, Body: bytes.NewReader(other),
		Metadata: store.metadata(req)}); err != nil {
		t.Fatal(err)
	}
	second, err := store.Copy(context.Background(), req, src.open())
	if err != nil {
		t.Fatal(err)
	}
	if second.Reused || src.calls.Load() != 2 {
		t.Errorf("reused %v after %d downloads: the late writer's bytes were vouched for", second.Reused, src.calls.Load())
	}
	if sum, _ := getObject(t, api, bucket, first.Key); sum != data.SHA256() {
		t.Errorf("object %s, want the export %s", sum, data.SHA256())
	}
}

// TestCopyRedactsExportText: text from the export that reaches the
// manifest or the error passes the caller's redaction.
func TestCopyRedactsExportText(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: 2}
	src := newTestSource(t, data, serveBody)
	src.body = strings.Replace(data.String(), `id="MyDataSourceName"`, `id="`+testKey+`"`, 1)
	store := newStore(t, api, bucket, Config{})
	req := testRequest(2)
	req.Redact = func(s string) string { return strings.ReplaceAll(s, testKey, "REDACTED") }
	_, err := store.Copy(context.Background(), req, src.open())
	if !errors.Is(err, ErrUnverified) || strings.Contains(err.Error(), testKey) {
		t.Fatalf("err %v", err)
	}
	raw, err := api.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(wantKey + ".manifest.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(raw.Body)
	if strings.Contains(b.String(), testKey) || !strings.Contains(b.String(), "REDACTED") {
		t.Errorf("manifest %s", b.String())
	}
}

// TestCopyRestorable: the export is checked against the load's rules in
// the same pass; an export SDS would not take back is archived (it is what
// the data source holds) but its manifest says restorable: false and why,
// without any entity data.
func TestCopyRestorable(t *testing.T) {
	api := newS3(t)
	data := testDataSet{Name: "MyDataSourceName", Entities: 5}
	good := data.String()
	cases := []struct {
		name    string
		body    string
		reasons []string // nil: restorable
	}{
		{"restorable", good, nil},
		// Not a column of the schema: the entity fails the load as a whole.
		{"an unknown property", strings.Replace(strings.Replace(good, "<Latitude>47.", "<Note>47.", 1), "</Latitude>", "</Note>", 1),
			[]string{"entity 1: structure: entity 1 has a <Note> element"}},
		{"latitude out of range", strings.Replace(good, "<Latitude>47.", "<Latitude>147.", 1),
			[]string{"entity 1: Latitude is outside -90..90"}},
		{"entities without a location", strings.NewReplacer("<Latitude>", "<!--", "</Latitude>", "-->").Replace(good),
			[]string{"5 entities, the first entity 1: the entity has no location"}},
		{"a duplicate entity ID", strings.Replace(good, "<EntityID>000000002</EntityID>", "<EntityID>000000001</EntityID>", 1),
			[]string{"entity 2: the entity ID is used by an earlier entity"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := newBucket(t, api)
			src := newTestSource(t, data, serveBody)
			src.body = tc.body
			store := newStore(t, api, bucket, Config{})
			res, err := store.Copy(context.Background(), testRequest(5), src.open())
			if err != nil || !res.Verified {
				t.Fatalf("err %v, verified %v: restorability must not fail the backup", err, res.Verified)
			}
			m := readManifest(t, api, bucket, wantKey+".manifest.json")
			if m.Restorable == nil || *m.Restorable != (tc.reasons == nil) {
				t.Fatalf("manifest restorable %v, problems %q; want %v", m.Restorable, m.RestoreProblems, tc.reasons == nil)
			}
			all := strings.Join(m.RestoreProblems, "\n")
			for _, r := range tc.reasons {
				if !strings.Contains(all, r) {
					t.Errorf("reason %q missing from %q", r, m.RestoreProblems)
				}
			}
			for _, leak := range []string{"147.", "000000001", "Redmond"} {
				if strings.Contains(all, leak) {
					t.Errorf("restoreProblems carry entity data %q: %q", leak, m.RestoreProblems)
				}
			}
		})
	}
}
