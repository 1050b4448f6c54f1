package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/s3err"
)

// ManifestFormatVersion is the manifest format Copy writes. Version 2 adds
// verified, verificationProblems, delivery, entityType and schemaId; an
// archive with an older manifest is copied again.
const ManifestFormatVersion = 2

// Manifest is the JSON record written next to an archived export once the
// export is completely stored. It is the record of the export's SHA-256.
type Manifest struct {
	FormatVersion  int    `json:"formatVersion"`
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
	JobID          string `json:"jobId"`
	VersionJobID   string `json:"versionJobId"`
	// Staging is true for an export of the staged version: it is never
	// served as the published one.
	Staging             bool   `json:"staging,omitempty"`
	EntityCount         int64  `json:"entityCount"`
	ExpectedEntityCount int64  `json:"expectedEntityCount"` // the job's total; also 0 when none was given (verificationProblems then says so)
	Bytes               int64  `json:"bytes"`
	SHA256              string `json:"sha256"`      // hex, of the stored object
	ContentType         string `json:"contentType"` // of the stored object: always the XML
	EntityType          string `json:"entityType"`
	SchemaID            string `json:"schemaId"` // the xs:schema's id
	// Verified is true only when every check passed (dataset.Verifier.Problems); the
	// reasons of those that failed are in Problems.
	Verified bool     `json:"verified"`
	Problems []string `json:"verificationProblems,omitempty"`
	// Restorable says whether a load of the export would pass every
	// documented load rule (package loadrules), checked entity by entity
	// as the export was archived; RestoreProblems says why not, without
	// entity data. Nil in a manifest written before the check: unknown.
	Restorable      *bool    `json:"restorable,omitempty"`
	RestoreProblems []string `json:"restoreProblems,omitempty"`
	// Delivery records how the export was received when the service packed
	// it (gzip, ZIP); what is stored is the XML inside.
	Delivery   *DeliveryRecord `json:"delivery,omitempty"`
	Bucket     string          `json:"bucket"`
	Key        string          `json:"key"`
	StartedAt  time.Time       `json:"startedAt"`  // RFC 3339, UTC
	FinishedAt time.Time       `json:"finishedAt"` // RFC 3339, UTC
	// Conversion is the record package conversion adds once the archive
	// is converted; its format is that package's.
	Conversion json.RawMessage `json:"conversion,omitempty"`
}

// Errors of ReadManifest besides ErrStorage.
var (
	// ErrNoManifest: there is no manifest under the key.
	ErrNoManifest = errors.New("no manifest")
	// ErrBadManifest: the object is no manifest (not JSON of one, or
	// larger than MaxManifestBytes).
	ErrBadManifest = errors.New("not a manifest")
)

// Getter is what reading a manifest needs of S3.
type Getter interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// StoredManifest is a manifest as read from S3.
type StoredManifest struct {
	Manifest
	Raw  []byte  // the object's bytes
	ETag *string // of the version read: the condition of an update
}

// ReadManifest reads and decodes the manifest at bucket/key, at most
// MaxManifestBytes of it. Its errors are in ErrNoManifest, ErrBadManifest
// or ErrStorage; it does not check what the manifest says (CheckManifest).
func ReadManifest(ctx context.Context, api Getter, bucket, key string) (StoredManifest, error) {
	where := "read s3://" + bucket + "/" + key
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if s3err.NotFound(err) {
		return StoredManifest{}, fmt.Errorf("%s: %w", where, ErrNoManifest)
	}
	if err != nil {
		return StoredManifest{}, classed(ErrStorage, where, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, MaxManifestBytes+1))
	if err != nil {
		return StoredManifest{}, classed(ErrStorage, where, err)
	}
	sm := StoredManifest{Raw: data, ETag: out.ETag}
	if len(data) > MaxManifestBytes {
		return StoredManifest{}, fmt.Errorf("%s: %w: larger than %d bytes", where, ErrBadManifest, MaxManifestBytes)
	}
	if err := json.Unmarshal(data, &sm.Manifest); err != nil {
		return StoredManifest{}, fmt.Errorf("%s: %w: %v", where, ErrBadManifest, err)
	}
	return sm, nil
}

// CheckManifest reports why m is not the manifest of the archive at
// bucket/key in this layout, or nil when it describes it: it names that
// object, the key's data source and job, and has a SHA-256 and counts that
// can be checked. Its format version is the caller's to judge.
func (l Layout) CheckManifest(m Manifest, bucket, key string) error {
	r, err := l.ParseKey(key)
	if err != nil {
		return err
	}
	sum, herr := hex.DecodeString(m.SHA256)
	switch {
	case m.Bucket != bucket || m.Key != key:
		return fmt.Errorf("it names s3://%s/%s", m.Bucket, m.Key)
	case m.AccessID != r.AccessID || m.DataSourceName != r.DataSourceName || m.JobID != r.JobID:
		return fmt.Errorf("it is for %s/%s job %s", m.AccessID, m.DataSourceName, m.JobID)
	case herr != nil || len(sum) != sha256.Size:
		return errors.New("its sha256 is not 64 hex digits")
	case m.Bytes < 0 || m.EntityCount < 0:
		return errors.New("its counts are negative")
	}
	return nil
}

// DeliveryRecord describes the bytes as received, before unpacking.
type DeliveryRecord struct {
	Encoding    string `json:"encoding"`    // "gzip" or "zip"
	ContentType string `json:"contentType"` // as the service sent it
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"` // hex
	Entry       string `json:"entry,omitempty"`
}

func (m Manifest) result(manifestKey string, reused bool) Result {
	return Result{
		Bucket:      m.Bucket,
		Key:         m.Key,
		ManifestKey: manifestKey,
		Bytes:       m.Bytes,
		SHA256:      m.SHA256,
		EntityCount: m.EntityCount,
		Reused:      reused,
		Verified:    m.Verified,
		Problems:    m.Problems,
	}
}

// describes reports why m is not the manifest of req's archive at
// bucket/key in layout l, or nil when it is.
func (m Manifest) describes(l Layout, req Request, bucket, key string) error {
	switch {
	case m.FormatVersion != ManifestFormatVersion:
		return fmt.Errorf("format version %d, want %d", m.FormatVersion, ManifestFormatVersion)
	case m.AccessID != req.AccessID || m.DataSourceName != req.DataSourceName || m.JobID != req.JobID:
		return fmt.Errorf("it is for %s/%s job %s", m.AccessID, m.DataSourceName, m.JobID)
	case !m.Verified && len(m.Problems) == 0:
		return errors.New("it is unverified without a reason")
	}
	return l.CheckManifest(m, bucket, key)
}

// existing returns the archive of req when its manifest and object are both
// in place and agree. A manifest that does not describe a complete archive
// is deleted, so that no manifest vouches for the object about to be
// replaced; the object itself is simply overwritten.
func (s *Store) existing(ctx context.Context, req Request, key, mkey string) (Result, bool, error) {
	sm, stale := ReadManifest(ctx, s.api, s.cfg.Bucket, mkey)
	switch {
	case errors.Is(stale, ErrNoManifest):
		return Result{}, false, nil
	case stale != nil && !errors.Is(stale, ErrBadManifest):
		return Result{}, false, stale
	}
	m := sm.Manifest
	if stale == nil {
		stale = m.describes(s.Layout(), req, s.cfg.Bucket, key)
	}
	if stale == nil {
		head, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		switch {
		case s3err.NotFound(err):
			stale = errors.New("the object is missing")
		case err != nil:
			return Result{}, false, fmt.Errorf("check %s: %w", key, err)
		case deref(head.ContentLength) != m.Bytes:
			stale = fmt.Errorf("the object has %d bytes, the manifest %d", deref(head.ContentLength), m.Bytes)
		case head.Metadata[MetaJobID] != req.JobID || head.Metadata[MetaAccessID] != req.AccessID ||
			head.Metadata[MetaDataSource] != req.DataSourceName:
			stale = errors.New("the object's metadata names another export")
		default:
			// Same length is not the same bytes: a late writer's object is
			// vouched for only if it hashes to the manifest's SHA-256.
			sum, err := s.objectSHA256(ctx, key, head.ETag)
			switch {
			case s3err.NotFound(err) || s3err.PreconditionFailed(err):
				stale = errors.New("the object changed while it was checked")
			case err != nil:
				return Result{}, false, fmt.Errorf("check %s: %w", key, err)
			case sum != m.SHA256:
				stale = fmt.Errorf("the object's SHA-256 is %s, the manifest's %s", sum, m.SHA256)
			}
		}
	}
	if stale == nil {
		return m.result(mkey, true), true, nil
	}
	if _, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.cfg.Bucket, Key: &mkey}); err != nil {
		return Result{}, false, fmt.Errorf("delete stale manifest %s (%v): %w", mkey, stale, err)
	}
	return Result{}, false, nil
}

func (s *Store) putManifest(ctx context.Context, mkey string, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	in := &s3.PutObjectInput{
		Bucket:        &s.cfg.Bucket,
		Key:           &mkey,
		Body:          bytes.NewReader(data),
		ContentLength: ptr(int64(len(data))),
		ContentType:   ptr("application/json"),
		Metadata:      map[string]string{MetaAccessID: m.AccessID, MetaDataSource: m.DataSourceName, MetaJobID: m.JobID},
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = s.sse()
	s.Retain(in)
	in.IfNoneMatch = ptr("*")
	_, err = s.api.PutObject(ctx, in)
	return err
}

// objectSHA256 reads the stored object (the version whose ETag is etag)
// and returns its SHA-256 in hex.
func (s *Store) objectSHA256(ctx context.Context, key string, etag *string) (string, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &key, IfMatch: etag})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
