package archive

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ManifestFormatVersion is the manifest format Copy writes.
const ManifestFormatVersion = 1

// maxManifestBytes bounds what is read of an existing manifest.
const maxManifestBytes = 1 << 20

// Manifest is the JSON record written next to an archived export once the
// export is completely stored. It is the record of the export's SHA-256.
type Manifest struct {
	FormatVersion       int       `json:"formatVersion"`
	AccessID            string    `json:"accessId"`
	DataSourceName      string    `json:"dataSourceName"`
	JobID               string    `json:"jobId"`
	VersionJobID        string    `json:"versionJobId"`
	EntityCount         int64     `json:"entityCount"`
	ExpectedEntityCount int64     `json:"expectedEntityCount"` // 0: not checked
	Bytes               int64     `json:"bytes"`
	SHA256              string    `json:"sha256"` // hex
	ContentType         string    `json:"contentType"`
	Bucket              string    `json:"bucket"`
	Key                 string    `json:"key"`
	StartedAt           time.Time `json:"startedAt"`  // RFC 3339, UTC
	FinishedAt          time.Time `json:"finishedAt"` // RFC 3339, UTC
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
	}
}

// describes reports why m is not the manifest of req's archive at
// bucket/key, or nil when it is.
func (m Manifest) describes(req Request, bucket, key string) error {
	sum, err := hex.DecodeString(m.SHA256)
	switch {
	case m.FormatVersion != ManifestFormatVersion:
		return fmt.Errorf("format version %d, want %d", m.FormatVersion, ManifestFormatVersion)
	case m.AccessID != req.AccessID || m.DataSourceName != req.DataSourceName || m.JobID != req.JobID:
		return fmt.Errorf("it is for %s/%s job %s", m.AccessID, m.DataSourceName, m.JobID)
	case m.Bucket != bucket || m.Key != key:
		return fmt.Errorf("it names s3://%s/%s", m.Bucket, m.Key)
	case err != nil || len(sum) != 32:
		return errors.New("its sha256 is not 64 hex digits")
	case m.Bytes < 0 || m.EntityCount < 0:
		return errors.New("its counts are negative")
	case req.ExpectedEntities > 0 && m.EntityCount != req.ExpectedEntities:
		return fmt.Errorf("it records %d entities, the job has %d", m.EntityCount, req.ExpectedEntities)
	}
	return nil
}

// existing returns the archive of req when its manifest and object are both
// in place and agree. A manifest that does not describe a complete archive
// is deleted, so that no manifest vouches for the object about to be
// replaced; the object itself is simply overwritten.
func (s *Store) existing(ctx context.Context, req Request, key, mkey string) (Result, bool, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.Bucket, Key: &mkey})
	if isNotFound(err) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("read %s: %w", mkey, err)
	}
	data, err := io.ReadAll(io.LimitReader(out.Body, maxManifestBytes+1))
	out.Body.Close()
	if err != nil {
		return Result{}, false, fmt.Errorf("read %s: %w", mkey, err)
	}

	var m Manifest
	stale := json.Unmarshal(data, &m)
	if len(data) > maxManifestBytes {
		stale = errors.New("manifest too large")
	}
	if stale == nil {
		stale = m.describes(req, s.cfg.Bucket, key)
	}
	if stale == nil {
		head, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
		switch {
		case isNotFound(err):
			stale = errors.New("the object is missing")
		case err != nil:
			return Result{}, false, fmt.Errorf("check %s: %w", key, err)
		case deref(head.ContentLength) != m.Bytes:
			stale = fmt.Errorf("the object has %d bytes, the manifest %d", deref(head.ContentLength), m.Bytes)
		case head.Metadata[MetaJobID] != req.JobID || head.Metadata[MetaAccessID] != req.AccessID ||
			head.Metadata[MetaDataSource] != req.DataSourceName:
			stale = errors.New("the object's metadata names another export")
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
	s.encrypt(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	_, err = s.api.PutObject(ctx, in)
	return err
}

// isNotFound reports an S3 answer that the object does not exist.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	if c := errorCode(err); c == "NoSuchKey" || c == "NotFound" {
		return true
	}
	var st interface{ HTTPStatusCode() int }
	return errors.As(err, &st) && st.HTTPStatusCode() == http.StatusNotFound
}

// errorCode returns the API error code S3 answered with, if any.
func errorCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
