package archive

import (
	"context"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Upload is an object written by PutStream.
type Upload struct {
	Key   string
	Bytes int64  // as stored (HeadObject)
	ETag  string // as stored: changes whenever the object is replaced
}

// PutStream streams body into the Store's bucket under key with the
// archive's encryption and retention (Retain), in multipart parts of the configured size, so
// memory stays bounded whatever the length. When body fails or S3 does,
// the upload is aborted and nothing is left under key by this call; the
// error wraps body's failure when that is the cause.
func (s *Store) PutStream(ctx context.Context, key, contentType string, body io.Reader) (Upload, error) {
	if err, abortErr := s.upload(ctx, key, contentType, body, nil); err != nil {
		return Upload{}, joinAbort(classed(ErrStorage, "upload s3://"+s.cfg.Bucket+"/"+key, err), abortErr)
	}
	head, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return Upload{}, classed(ErrStorage, "check s3://"+s.cfg.Bucket+"/"+key, err)
	}
	return Upload{Key: key, Bytes: deref(head.ContentLength), ETag: deref(head.ETag)}, nil
}

// Bucket is the Store's bucket.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// Prefix is the Store's key prefix, ending in '/'.
func (s *Store) Prefix() string { return s.cfg.Prefix }
