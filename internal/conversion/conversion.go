// Package conversion turns an archived SDS export (the XML in S3, never
// SDS itself) into GeoJSON, GeoParquet and a schema document stored
// beside it, in one read, and records them in the archive's manifest.
// An archive converted before GeoParquet was written gets its GeoParquet
// the same way, its GeoJSON and schema document left as recorded.
//
// The archive's bytes are checked against the manifest's sha256 and size
// while they stream; outputs are uploaded in multipart parts as they are
// produced, so memory does not grow with the export. Nothing counts as
// converted until the manifest records it (a conditional write on the
// manifest's ETag, so a concurrent change to the manifest is never lost):
// a conversion that fails aborts its uploads, and outputs already written
// are deleted when the manifest cannot be updated.
//
// Under S3 Object Lock (the Store's archive.Retention) each output and
// each manifest version is locked in the request that writes it. A failed
// conversion's outputs are then removed from view only: a delete without
// a version id leaves a delete marker over the locked version, which S3
// keeps until its retention ends.
//
// An archive whose manifest says verified: false is converted all the
// same (the data is what the service sent, and a way out is wanted most
// when something is wrong); the record then says fromUnverifiedArchive.
package conversion

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/geojson"
	"github.com/sdsops/sdsops/internal/s3err"
)

// Error classes for errors.Is; every error Convert returns is in one.
var (
	// ErrNotFound: no manifest under the key given.
	ErrNotFound = errors.New("archive not found")
	// ErrInvalid: the key or the manifest is not that of an archive in
	// this bucket.
	ErrInvalid = errors.New("not an archive")
	// ErrIntegrity: the archived bytes do not match the manifest's sha256
	// or size. Nothing was written.
	ErrIntegrity = errors.New("archive does not match its manifest")
	// ErrExport: the archive matches its manifest but is not a DataSet
	// that converts. Nothing was written.
	ErrExport = errors.New("export does not convert")
	// ErrStorage: S3 failed; nothing is left half-written.
	ErrStorage = errors.New("storage failed")
)

// RecordFormatVersion is the version of the manifest's conversion record.
const RecordFormatVersion = 1

// Content types of the outputs.
const (
	GeoJSONContentType    = "application/geo+json"
	SchemaContentType     = "application/json"
	GeoParquetContentType = "application/vnd.apache.parquet"
)

// Suffixes of the outputs' keys: each is stored beside its archive
// (archive.Beside).
const (
	GeoJSONSuffix    = ".geojson"
	SchemaSuffix     = ".schema.json"
	GeoParquetSuffix = ".parquet"
)

// File is one output as recorded.
type File struct {
	Key         string `json:"key"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"` // hex
	ContentType string `json:"contentType"`
	// ETag is S3's, as stored: a later check compares size and ETag
	// instead of reading the file again.
	ETag string `json:"etag"`
}

// ParquetFile is the GeoParquet output as recorded.
type ParquetFile struct {
	File
	Rows      int64 `json:"rows"`
	RowGroups int   `json:"rowGroups"`
}

// Record is the manifest's "conversion" field.
type Record struct {
	FormatVersion int  `json:"formatVersion"`
	GeoJSON       File `json:"geojson"`
	Schema        File `json:"schema"`
	// GeoParquet is absent in records of conversions made before it was
	// written; Convert then adds it, leaving the other outputs as they are.
	GeoParquet *ParquetFile `json:"geoparquet,omitempty"`
	EntityType string       `json:"entityType"`
	// Features always equals the archive's entity count.
	Features   int64            `json:"featureCount"`
	Geometries map[string]int64 `json:"geometryCounts"`
	Empty      int64            `json:"emptyGeometries"`
	Invalid    int64            `json:"invalidGeometries"`
	Missing    int64            `json:"missingGeometries"`
	// SourceSHA256 is the archive's sha256 the outputs were made from.
	SourceSHA256 string `json:"sourceSha256"`
	// FromUnverifiedArchive: the manifest said verified: false.
	FromUnverifiedArchive bool      `json:"fromUnverifiedArchive,omitempty"`
	ConvertedAt           time.Time `json:"convertedAt"`
}

// Result is a conversion done or found.
type Result struct {
	Bucket      string
	Key         string // the archive's
	ManifestKey string
	Record      Record
	// Reused: the manifest already recorded a conversion whose outputs
	// are in place; nothing was read or written.
	Reused bool
}

// S3API is what a Converter needs of S3 besides the Store's uploads.
type S3API interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Converter converts archives of one Store.
type Converter struct {
	api   S3API
	store *archive.Store
	now   func() time.Time
}

// New returns a Converter reading and writing through api in store's
// bucket, uploading with store.
func New(api S3API, store *archive.Store) *Converter {
	return &Converter{api: api, store: store, now: time.Now}
}

// manifest is an archive's manifest with its conversion record, if any,
// decoded.
type manifest struct {
	archive.Manifest
	record *Record
}

// Convert converts the archive whose manifest is at manifestKey, or
// returns the conversion its manifest already records when the outputs
// are still in place.
func (c *Converter) Convert(ctx context.Context, manifestKey string) (Result, error) {
	bucket, layout := c.store.Bucket(), c.store.Layout()
	ref, err := layout.ParseManifestKey(manifestKey)
	if err != nil {
		return Result{}, classed(ErrInvalid, "convert", err)
	}
	key := layout.Key(ref)
	where := "convert s3://" + bucket + "/" + key
	raw, etag, m, err := c.readManifest(ctx, manifestKey)
	if err != nil {
		return Result{}, err
	}
	if err := layout.CheckManifest(m.Manifest, bucket, key); err != nil {
		return Result{}, classed(ErrInvalid, where, fmt.Errorf("the manifest %s does not describe this archive: %w", manifestKey, err))
	}
	res := Result{Bucket: bucket, Key: key, ManifestKey: manifestKey}
	backfill := false // the recorded GeoJSON and schema stay; only GeoParquet is added
	if m.record != nil {
		ok, err := c.inPlace(ctx, m)
		if err != nil {
			return Result{}, classed(ErrStorage, where+": check the recorded outputs", err)
		}
		if ok && m.record.GeoParquet != nil {
			res.Record, res.Reused = *m.record, true
			return res, nil
		}
		backfill = ok
	}

	rec, err := c.convert(ctx, key, m, !backfill)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", where, err)
	}
	if backfill {
		pq := rec.GeoParquet
		rec = *m.record
		rec.GeoParquet = pq
	}
	res.Record = rec
	// remove deletes what this call wrote, never outputs already recorded.
	remove := func() {
		if backfill {
			c.delete(ctx, rec.GeoParquet.Key)
		} else {
			c.remove(ctx, rec)
		}
	}

	raw["conversion"], err = json.Marshal(rec)
	if err != nil {
		remove()
		return Result{}, classed(ErrStorage, where, err)
	}
	if err := c.putManifest(ctx, manifestKey, etag, raw); err != nil {
		// The manifest changed since it was read: when it now records a
		// conversion whose outputs are in place (a concurrent convert of
		// the same archive), those are the outputs; else ours go.
		if s3err.PreconditionFailed(err) {
			if _, _, now, rerr := c.readManifest(ctx, manifestKey); rerr == nil && now.record != nil && now.SHA256 == m.SHA256 {
				if ok, _ := c.inPlace(ctx, now); ok {
					res.Record, res.Reused = *now.record, true
					return res, nil
				}
			}
		}
		remove()
		return Result{}, classed(ErrStorage, where+": record the conversion in "+manifestKey, err)
	}
	return res, nil
}

// convert streams the archive through geojson.Convert into its outputs:
// the GeoParquet, and with withGeoJSON the GeoJSON and the schema
// document. Uploads complete only after the last archive byte has been
// checked against the manifest; on any failure they are aborted, or
// deleted when complete, and the schema document is not written.
func (c *Converter) convert(ctx context.Context, key string, m manifest, withGeoJSON bool) (Record, error) {
	bucket := c.store.Bucket()
	obj, err := c.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if s3err.NotFound(err) {
		return Record{}, classed(ErrIntegrity, "read the archive", errors.New("the archived object is missing"))
	}
	if err != nil {
		return Record{}, classed(ErrStorage, "read the archive", err)
	}
	defer obj.Body.Close()
	src := &checked{r: obj.Body, h: sha256.New()}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var uploads []*stream
	put := func(key, contentType string) *stream {
		s := c.stream(ctx, cancel, key, contentType)
		uploads = append(uploads, s)
		return s
	}
	pq := put(archive.Beside(key, GeoParquetSuffix), GeoParquetContentType)
	pqw := bufio.NewWriterSize(pq.pw, 64<<10)
	var (
		gj       *stream
		features io.Writer = io.Discard
		gjw      *bufio.Writer
	)
	if withGeoJSON {
		gj = put(archive.Beside(key, GeoJSONSuffix), GeoJSONContentType)
		gjw = bufio.NewWriterSize(gj.pw, 64<<10)
		features = gjw
	}
	var schema bytes.Buffer
	st, err := geojson.Convert(ctx, src, "", features, &schema, geojson.WithGeoParquet(pqw, os.TempDir()))
	if err == nil && gjw != nil {
		err = gjw.Flush()
	}
	if err == nil {
		err = pqw.Flush()
	}
	if err != nil {
		// Read on: a conversion that fails on bytes that are not the
		// archived ones is reported as the mismatch it is.
		if ierr := src.finish(m); ierr != nil {
			err = ierr
		} else {
			err = classed(ErrExport, "convert", err)
		}
	} else if err = src.finish(m); err == nil && st.Features != m.EntityCount {
		err = classed(ErrExport, "convert", fmt.Errorf("%d features from %d entities", st.Features, m.EntityCount))
	}
	var uerr error
	for _, u := range uploads {
		u.pw.CloseWithError(err) // nil completes the upload
	}
	for _, u := range uploads {
		<-u.done
		if uerr == nil && u.err != nil {
			uerr = fmt.Errorf("upload %s: %w", u.key, u.err)
		}
	}
	// discard deletes every output, failed uploads' too: an upload can
	// fail after S3 stored the object (its check cancelled when another
	// upload failed).
	discard := func() {
		for _, u := range uploads {
			c.delete(ctx, u.key)
		}
	}
	switch {
	case err != nil && (uerr == nil || errors.Is(err, ErrIntegrity)):
		discard()
		return Record{}, err
	case uerr != nil:
		discard()
		return Record{}, classed(ErrStorage, "upload the outputs", uerr)
	}
	for _, check := range []struct {
		u    *stream
		sent int64
	}{{pq, st.GeoParquet.Bytes}, {gj, st.GeoJSON.Bytes}} {
		if check.u != nil && check.u.up.Bytes != check.sent {
			discard()
			return Record{}, classed(ErrStorage, "upload "+check.u.key, fmt.Errorf("stored %d bytes, %d were sent", check.u.up.Bytes, check.sent))
		}
	}
	rec := Record{
		FormatVersion: RecordFormatVersion,
		GeoParquet: &ParquetFile{
			File: File{Key: pq.up.Key, Bytes: pq.up.Bytes, SHA256: st.GeoParquet.SHA256, ContentType: GeoParquetContentType, ETag: pq.up.ETag},
			Rows: st.GeoParquet.Rows, RowGroups: st.GeoParquet.RowGroups,
		},
		EntityType:   st.EntityType,
		Features:     st.Features,
		Geometries:   st.Geometries,
		Empty:        st.Empty,
		Invalid:      st.Invalid,
		Missing:      st.Missing,
		SourceSHA256: m.SHA256,
		ConvertedAt:  c.now().UTC(),
	}
	rec.FromUnverifiedArchive = !m.Verified
	if !withGeoJSON {
		return rec, nil
	}
	rec.GeoJSON = File{Key: gj.up.Key, Bytes: gj.up.Bytes, SHA256: st.GeoJSON.SHA256, ContentType: GeoJSONContentType, ETag: gj.up.ETag}
	sup, err := c.store.PutStream(ctx, archive.Beside(key, SchemaSuffix), SchemaContentType, &schema)
	if err != nil {
		discard()
		return Record{}, classed(ErrStorage, "upload the schema document", err)
	}
	rec.Schema = File{Key: sup.Key, Bytes: sup.Bytes, SHA256: st.Schema.SHA256, ContentType: SchemaContentType, ETag: sup.ETag}
	if sup.Bytes != st.Schema.Bytes {
		c.remove(ctx, rec)
		return Record{}, classed(ErrStorage, "upload the schema document", fmt.Errorf("stored %d bytes, %d were sent", sup.Bytes, st.Schema.Bytes))
	}
	return rec, nil
}

// stream is an upload fed through a pipe.
type stream struct {
	key  string
	pw   *io.PipeWriter
	up   archive.Upload
	err  error
	done chan struct{}
}

// stream starts uploading what is written to the returned stream's pipe
// to key; the upload completes when the pipe is closed without an error.
// A failed upload cancels the conversion.
func (c *Converter) stream(ctx context.Context, cancel func(), key, contentType string) *stream {
	pr, pw := io.Pipe()
	s := &stream{key: key, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.up, s.err = c.store.PutStream(ctx, key, contentType, pr)
		pr.CloseWithError(errors.New("upload stopped"))
		if s.err != nil {
			cancel()
		}
	}()
	return s
}

// inPlace reports whether m's conversion record is current and its
// outputs are stored as recorded (size and ETag).
func (c *Converter) inPlace(ctx context.Context, m manifest) (bool, error) {
	r := m.record
	if r.FormatVersion != RecordFormatVersion || r.SourceSHA256 != m.SHA256 {
		return false, nil
	}
	bucket := c.store.Bucket()
	files := []File{r.GeoJSON, r.Schema}
	if r.GeoParquet != nil {
		files = append(files, r.GeoParquet.File)
	}
	for _, f := range files {
		head, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &f.Key})
		if s3err.NotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if head.ContentLength == nil || *head.ContentLength != f.Bytes || head.ETag == nil || *head.ETag != f.ETag {
			return false, nil
		}
	}
	return true, nil
}

// RecordOf decodes the conversion record of manifest m; nil when m records
// no conversion.
func RecordOf(m archive.Manifest) (*Record, error) {
	if len(m.Conversion) == 0 || string(m.Conversion) == "null" {
		return nil, nil
	}
	r := new(Record)
	if err := json.Unmarshal(m.Conversion, r); err != nil {
		return nil, fmt.Errorf("its conversion record: %w", err)
	}
	return r, nil
}

func (c *Converter) readManifest(ctx context.Context, mkey string) (map[string]json.RawMessage, *string, manifest, error) {
	bucket := c.store.Bucket()
	var m manifest
	sm, err := archive.ReadManifest(ctx, c.api, bucket, mkey)
	switch {
	case errors.Is(err, archive.ErrNoManifest):
		return nil, nil, m, classed(ErrNotFound, "s3://"+bucket+"/"+mkey, errors.New("no manifest: not an archive, or an incomplete one"))
	case errors.Is(err, archive.ErrBadManifest):
		return nil, nil, m, classed(ErrInvalid, mkey, err)
	case err != nil:
		return nil, nil, m, classed(ErrStorage, "read "+mkey, err)
	}
	m.Manifest = sm.Manifest
	if m.record, err = RecordOf(sm.Manifest); err != nil {
		return nil, nil, m, classed(ErrInvalid, mkey, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(sm.Raw, &raw); err != nil {
		return nil, nil, m, classed(ErrInvalid, mkey, err)
	}
	if sm.ETag == nil {
		return nil, nil, m, classed(ErrStorage, "read "+mkey, errors.New("S3 gave no ETag"))
	}
	return raw, sm.ETag, m, nil
}

func (c *Converter) putManifest(ctx context.Context, mkey string, etag *string, raw map[string]json.RawMessage) error {
	data, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	bucket := c.store.Bucket()
	up, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &mkey, IfMatch: etag})
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket: &bucket, Key: &mkey, Body: bytes.NewReader(data), ContentLength: ptr(int64(len(data))),
		ContentType: ptr("application/json"), IfMatch: etag, Metadata: up.Metadata,
		ServerSideEncryption: up.ServerSideEncryption, SSEKMSKeyId: up.SSEKMSKeyId,
	}
	// The new version gets a retention of its own; the one it replaces
	// keeps its lock as history.
	c.store.Retain(in)
	_, err = c.api.PutObject(ctx, in)
	return err
}

// remove deletes rec's outputs, best effort: they are not recorded, and
// the next conversion overwrites them.
func (c *Converter) remove(ctx context.Context, rec Record) {
	c.delete(ctx, rec.GeoJSON.Key)
	c.delete(ctx, rec.Schema.Key)
	if rec.GeoParquet != nil {
		c.delete(ctx, rec.GeoParquet.Key)
	}
}

func (c *Converter) delete(ctx context.Context, key string) {
	if key == "" {
		return
	}
	bucket := c.store.Bucket()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c.api.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
}

// checked hashes and counts what is read through it.
type checked struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *checked) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// finish reads what the conversion left unread and compares the whole
// with the manifest.
func (c *checked) finish(m manifest) error {
	if _, err := io.Copy(io.Discard, c); err != nil {
		return classed(ErrStorage, "read the archive", err)
	}
	sum := hex.EncodeToString(c.h.Sum(nil))
	if c.n != m.Bytes || sum != m.SHA256 {
		return classed(ErrIntegrity, "check the archive", fmt.Errorf("it has %d bytes with sha256 %s, its manifest says %d bytes with sha256 %s: changed or damaged since it was archived", c.n, sum, m.Bytes, m.SHA256))
	}
	return nil
}

func classed(class error, doing string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%s: %w", doing, class)
	}
	return fmt.Errorf("%s: %w: %w", doing, class, cause)
}

func ptr[T any](v T) *T { return &v }
