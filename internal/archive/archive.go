// Package archive streams one SDS export (a download job's XML DataSet)
// into S3 and records it with a manifest. It reads the export through an
// Opener, so the bytes may come from SDS, from S3 or from a file; the
// format is checked by package dataset.
//
// An archive is an object plus its manifest: the export goes straight from
// its source into an S3 upload, is hashed, counted and checked while
// it streams, and the manifest is written only after the object is
// complete. An export that does not arrive complete (short, broken,
// not well-formed) never completes its upload, so no object is left
// behind. One that arrives complete is always kept; its manifest says
// whether every verification check (dataset.Verifier.Problems) passed. An object without a
// manifest is not an archive and is overwritten by the next attempt.
package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/s3err"
)

// Error classes for errors.Is. Every error Copy returns is in exactly one.
var (
	// ErrIntegrity: the export is not what it claims to be — its size,
	// structure or entity count does not match, or the stored object does
	// not match what was sent.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrSource: the export could not be opened or its stream broke. The
	// Opener's or the stream's error is wrapped, so errors.Is and errors.As
	// still reach it.
	ErrSource = errors.New("export source failed")
	// ErrStorage: S3 failed.
	ErrStorage = errors.New("storage failed")
	// ErrInvalidRequest: the Request or Config is unusable; nothing was
	// read or written.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnverified: the export arrived complete and is archived with its
	// manifest, but not every verification check passed; the manifest says
	// verified: false with the reasons, and so does the error. Copy returns
	// the Result along with it.
	ErrUnverified = errors.New("archive stored but not verified")
)

// Defaults for Config.
const (
	DefaultPrefix      = "sds-exports/"
	DefaultPartSize    = 8 << 20
	DefaultConcurrency = 2
	// MinPartSize is S3's smallest multipart part.
	MinPartSize = 5 << 20
)

// ContentType is the stored export's content type.
const ContentType = "application/xml"

// Config configures a Store.
type Config struct {
	Bucket string
	// Prefix starts every key; default DefaultPrefix. A trailing slash is
	// added when missing.
	Prefix string
	// KMSKeyID selects SSE-KMS with this key; empty selects SSE-S3 (AES256).
	KMSKeyID string
	// PartSize is the multipart part size; default DefaultPartSize, at
	// least MinPartSize. Memory held per Copy is about
	// PartSize × (Concurrency + 2).
	PartSize int64
	// Concurrency is the number of parts uploaded at once; default
	// DefaultConcurrency.
	Concurrency int
	// Now is the clock for the manifest's times and claims' expiry;
	// default time.Now.
	Now func() time.Time
	// ClaimLease is how long a copy's claim on its job holds without
	// renewal; default DefaultClaimLease.
	ClaimLease time.Duration
	// Retention locks what must not be lost (see Retention); the zero
	// value locks nothing. The bucket must have Object Lock enabled.
	Retention Retention
}

// S3API is the part of the S3 client a Store uses.
type S3API interface {
	transfermanager.S3APIClient
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
}

// Store copies exports into one bucket. It is safe for concurrent use.
type Store struct {
	api      S3API
	cfg      Config
	uploader *transfermanager.Client
}

// New returns a Store writing to cfg.Bucket through api.
func New(api S3API, cfg Config) (*Store, error) {
	if api == nil {
		return nil, classed(ErrInvalidRequest, "archive: no S3 client", nil)
	}
	if cfg.Bucket == "" {
		return nil, classed(ErrInvalidRequest, "archive: no bucket configured", nil)
	}
	cfg.Prefix = NewLayout(cfg.Prefix).Prefix()
	switch {
	case cfg.PartSize == 0:
		cfg.PartSize = DefaultPartSize
	case cfg.PartSize < MinPartSize:
		return nil, classed(ErrInvalidRequest, fmt.Sprintf("archive: part size %d is below S3's minimum of %d bytes", cfg.PartSize, MinPartSize), nil)
	}
	switch {
	case cfg.Concurrency == 0:
		cfg.Concurrency = DefaultConcurrency
	case cfg.Concurrency < 0:
		return nil, classed(ErrInvalidRequest, fmt.Sprintf("archive: concurrency %d is negative", cfg.Concurrency), nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.ClaimLease == 0:
		cfg.ClaimLease = DefaultClaimLease
	case cfg.ClaimLease < 0:
		return nil, classed(ErrInvalidRequest, fmt.Sprintf("archive: claim lease %v is negative", cfg.ClaimLease), nil)
	}
	s := &Store{api: api, cfg: cfg}
	s.uploader = transfermanager.New(api, func(o *transfermanager.Options) {
		o.PartSizeBytes = cfg.PartSize
		// An export smaller than one part goes up in one PutObject.
		o.MultipartUploadThreshold = cfg.PartSize
		o.Concurrency = cfg.Concurrency
		// The parts of a failed upload are aborted, with a context of its
		// own when the caller's was cancelled; abortLeftover makes sure.
		o.FailTimeout = abortTimeout
	})
	return s, nil
}

// Request identifies one export to archive.
type Request struct {
	// AccessID, DataSourceName and JobID (the download job's id) name the
	// export; none may be empty or contain '/'.
	AccessID, DataSourceName, JobID string
	// VersionJobID optionally names the data source version exported.
	VersionJobID string
	// Staging: the export is of the staged version, not the published one.
	Staging bool
	// JobCreated is the download job's creation time. Its UTC date is part
	// of the key, so a retry on a later day finds the same archive.
	JobCreated time.Time
	// ExpectedEntities is the job's total entity count: 0 for an empty
	// data source. dataset.NoTotal (the job gave none) leaves the archive
	// unverified: the count cannot be checked.
	ExpectedEntities int64
	// StartedAt is when the backup started, for the manifest; zero means
	// when Copy was called.
	StartedAt time.Time
	// Redact, when set, removes secrets from text taken from the export
	// (names, verification reasons) before it is written to the manifest
	// or returned.
	Redact func(string) string
}

func (r Request) validate() error {
	for _, f := range []struct{ name, v string }{
		{"access id", r.AccessID}, {"data source name", r.DataSourceName}, {"job id", r.JobID},
	} {
		if f.v == "" {
			return fmt.Errorf("%s is empty", f.name)
		}
		if strings.Contains(f.v, "/") {
			return fmt.Errorf("%s %q contains '/'", f.name, f.v)
		}
	}
	if r.JobCreated.IsZero() {
		return errors.New("job creation time is not set")
	}
	if r.ExpectedEntities < 0 && r.ExpectedEntities != dataset.NoTotal {
		return fmt.Errorf("expected entity count %d is negative", r.ExpectedEntities)
	}
	return nil
}

// Result describes a stored archive.
type Result struct {
	Bucket, Key, ManifestKey string
	Bytes                    int64
	SHA256                   string // hex, of the whole object
	EntityCount              int64
	// Reused is true when the archive already existed and nothing was
	// downloaded.
	Reused bool
	// Verified is true when every verification check passed; Problems
	// holds the reasons otherwise.
	Verified bool
	Problems []string
}

// Keys returns the object and manifest keys of req's archive (Layout).
func (s *Store) Keys(req Request) (key, manifestKey string) {
	r := Ref{AccessID: req.AccessID, DataSourceName: req.DataSourceName, Day: req.JobCreated, JobID: req.JobID}
	return s.Layout().Key(r), s.Layout().ManifestKey(r)
}

// Object metadata keys. The object's SHA-256 is not among them: it is known
// only once the last byte has streamed, after a multipart upload has been
// created, and S3 cannot add metadata to an object afterwards without
// copying it. The manifest, written last, is the record of the SHA-256.
const (
	MetaAccessID     = "sds-access-id"
	MetaDataSource   = "sds-data-source"
	MetaJobID        = "sds-job-id"
	MetaVersionJobID = "sds-version-job-id"
)

// Export is an opened export: the XML DataSet and what its source says
// about it.
type Export struct {
	Body io.ReadCloser
	// Length is the announced length of Body in bytes; -1 when unknown.
	// A stream of another length is not stored.
	Length int64
	// Delivery, when set, describes the bytes as they were received when
	// they were packed (ZIP or gzip) and Body yields what was inside. It
	// is called once Body has returned io.EOF, when it is complete.
	Delivery func() *DeliveryRecord
	// Corrupt, when set, tells whether a read error of Body means the
	// packing is corrupt (ErrIntegrity) rather than that the source failed
	// (ErrSource).
	Corrupt func(error) bool
}

// Opener opens the export of a Request.
type Opener func(context.Context) (Export, error)

// Copy streams the export returned by open into S3 and writes the manifest
// last. When a complete archive for req already exists, or another copy of
// the same job is storing it, Copy returns that archive with Reused set
// and does not call open.
func (s *Store) Copy(ctx context.Context, req Request, open Opener) (Result, error) {
	if err := req.validate(); err != nil {
		return Result{}, classed(ErrInvalidRequest, "archive", err)
	}
	started := req.StartedAt
	if started.IsZero() {
		started = s.cfg.Now()
	}
	key, mkey := s.Keys(req)
	where := "archive s3://" + s.cfg.Bucket + "/" + key

	res, c, err := s.acquire(ctx, req, key, mkey)
	if err != nil {
		return Result{}, classed(ErrStorage, where, err)
	}
	if c == nil {
		s.abortStale(ctx, key)
		return res, s.outcome(where, res)
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c.keep(ctx, stop)
	defer c.release(ctx)
	res, err = s.copyClaimed(ctx, req, open, key, mkey, started)
	if err != nil && errors.Is(context.Cause(ctx), errClaimLost) {
		return Result{}, classed(ErrStorage, where, errClaimLost)
	}
	return res, err
}

// copyClaimed is Copy once this copy holds the job's claim.
func (s *Store) copyClaimed(ctx context.Context, req Request, open Opener, key, mkey string, started time.Time) (Result, error) {
	where := "archive s3://" + s.cfg.Bucket + "/" + key
	exp, err := open(ctx)
	if err != nil {
		return Result{}, classed(ErrSource, where+": open the export", err)
	}
	if exp.Body == nil {
		return Result{}, classed(ErrSource, where+": open the export", errors.New("no export stream"))
	}
	defer exp.Body.Close()

	body := newExportReader(exp, req)
	if err, abortErr := s.upload(ctx, key, ContentType, body, s.metadata(req)); err != nil {
		if rerr := body.failure(); rerr != nil {
			// The stream's own error says what went wrong; the
			// uploader's wrapping of it adds nothing.
			return Result{}, joinAbort(fmt.Errorf("%s: %w", where, rerr), abortErr)
		}
		return Result{}, joinAbort(classed(ErrStorage, where+": upload", err), abortErr)
	}
	sum, err := body.summary()
	if err != nil {
		return Result{}, classed(ErrIntegrity, where, err)
	}
	if req.Redact != nil {
		sum.entityType, sum.schemaID = req.Redact(sum.entityType), req.Redact(sum.schemaID)
		for i := range sum.problems {
			sum.problems[i] = req.Redact(sum.problems[i])
		}
		for i := range sum.restoreProblems {
			sum.restoreProblems[i] = req.Redact(sum.restoreProblems[i])
		}
	}

	// The upload succeeded with exactly the bytes read; check that S3 holds
	// that many before declaring the archive complete.
	head, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.cfg.Bucket, Key: &key})
	if err != nil {
		return Result{}, classed(ErrStorage, where+": check the stored object", err)
	}
	if got := deref(head.ContentLength); got != sum.bytes {
		return Result{}, classed(ErrIntegrity, where, fmt.Errorf("stored object has %d bytes, %d were sent", got, sum.bytes))
	}

	m := Manifest{
		FormatVersion:       ManifestFormatVersion,
		AccessID:            req.AccessID,
		DataSourceName:      req.DataSourceName,
		JobID:               req.JobID,
		VersionJobID:        req.VersionJobID,
		Staging:             req.Staging,
		EntityCount:         sum.entities,
		ExpectedEntityCount: max(req.ExpectedEntities, 0), // none given: 0, as before
		Bytes:               sum.bytes,
		SHA256:              sum.sha256,
		ContentType:         ContentType,
		EntityType:          sum.entityType,
		SchemaID:            sum.schemaID,
		Verified:            len(sum.problems) == 0,
		Problems:            sum.problems,
		Restorable:          new(len(sum.restoreProblems) == 0),
		RestoreProblems:     sum.restoreProblems,
		Bucket:              s.cfg.Bucket,
		Key:                 key,
		StartedAt:           started.UTC(),
		FinishedAt:          s.cfg.Now().UTC(),
	}
	if exp.Delivery != nil {
		m.Delivery = exp.Delivery()
	}
	// The claim keeps other copies of the job away; the manifest is still
	// written only if none exists, so that even a copy whose claim lapsed
	// unnoticed cannot record a second archive. Such a copy accepts the
	// other's archive if it is sound.
	if err := s.putManifest(ctx, mkey, m); err != nil {
		if !s3err.PreconditionFailed(err) {
			return Result{}, classed(ErrStorage, where+": write the manifest", err)
		}
		res, ok, err := s.existing(ctx, req, key, mkey)
		switch {
		case err != nil:
			return Result{}, classed(ErrStorage, where+": read the manifest a concurrent copy wrote", err)
		case !ok:
			return Result{}, classed(ErrStorage, where, errors.New("a concurrent copy wrote a manifest that does not match the stored object; try again"))
		}
		return res, s.outcome(where, res)
	}
	s.abortStale(ctx, key)
	res := m.result(mkey, false)
	return res, s.outcome(where, res)
}

// outcome is the error for an archive that is stored but not verified.
func (s *Store) outcome(where string, res Result) error {
	if res.Verified {
		return nil
	}
	return classed(ErrUnverified, where, errors.New(strings.Join(res.Problems, "; ")))
}

func (s *Store) metadata(req Request) map[string]string {
	md := map[string]string{
		MetaAccessID:   req.AccessID,
		MetaDataSource: req.DataSourceName,
		MetaJobID:      req.JobID,
	}
	if req.VersionJobID != "" {
		md[MetaVersionJobID] = req.VersionJobID
	}
	return md
}

// upload streams body to key through the transfer manager with the
// archive's encryption and its retention, if any (see
// Retain: the lock goes with the PutObject or the CreateMultipartUpload,
// the checksum with the PutObject or every part). When it fails, abortErr
// is the failure to abort the multipart upload it leaves, if that failed
// too.
func (s *Store) upload(ctx context.Context, key, contentType string, body io.Reader, metadata map[string]string) (err, abortErr error) {
	in := &transfermanager.UploadObjectInput{
		Bucket:      &s.cfg.Bucket,
		Key:         &key,
		Body:        body,
		ContentType: &contentType,
		Metadata:    metadata,
	}
	mode, kmsKey := s.sse()
	in.ServerSideEncryption, in.SSEKMSKeyID = tmtypes.ServerSideEncryption(mode), kmsKey
	if r := s.cfg.Retention; r.On() {
		in.ObjectLockMode = tmtypes.ObjectLockMode(r.Mode)
		in.ObjectLockRetainUntilDate = ptr(r.Until(s.cfg.Now()))
		in.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmCrc32
	}
	if _, err := s.uploader.UploadObject(ctx, in); err != nil {
		return err, s.abortLeftover(ctx, key, err)
	}
	return nil, nil
}

// sse is the server-side encryption of every object written: SSE-KMS
// with KMSKeyID when set, else SSE-S3.
func (s *Store) sse() (mode types.ServerSideEncryption, kmsKeyID *string) {
	if s.cfg.KMSKeyID == "" {
		return types.ServerSideEncryptionAes256, nil
	}
	return types.ServerSideEncryptionAwsKms, ptr(s.cfg.KMSKeyID)
}

// abortTimeout bounds the abort of a failed multipart upload, which runs
// even when the caller's context is what failed.
const abortTimeout = 30 * time.Second

// abortLeftover makes sure a failed multipart upload leaves no parts. The
// uploader aborts on failure, but a failed abort only adds to its error;
// one more abort with a context of our own settles it. An upload that is already
// gone answers NoSuchUpload, which is success here.
func (s *Store) abortLeftover(ctx context.Context, key string, uploadErr error) error {
	var mf transfermanager.MultipartUploadError
	if !errors.As(uploadErr, &mf) || mf.UploadID() == "" {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	id := mf.UploadID()
	_, err := s.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: &id})
	var nsu *types.NoSuchUpload
	if err == nil || errors.As(err, &nsu) || s3err.Code(err) == "NoSuchUpload" {
		return nil
	}
	return fmt.Errorf("abort multipart upload %s: %w", id, err)
}

// abortStale aborts multipart uploads of key left by an earlier attempt
// that was killed mid-copy (a Lambda timeout or crash cannot clean up after
// itself). It runs once the archive is complete, so that it never cuts off
// a copy of the same job still running: that one fails, and its retry
// finds the archive. It is best effort: the bucket's lifecycle rule
// removes incomplete uploads after a day anyway.
func (s *Store) abortStale(ctx context.Context, key string) {
	out, err := s.api.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.cfg.Bucket, Prefix: &key})
	if err != nil {
		return
	}
	for _, u := range out.Uploads {
		if deref(u.Key) != key || u.UploadId == nil {
			continue
		}
		s.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.cfg.Bucket, Key: &key, UploadId: u.UploadId})
	}
}

// joinAbort adds a failed abort to err's message without changing its class.
func joinAbort(err, abortErr error) error {
	if abortErr == nil {
		return err
	}
	return fmt.Errorf("%w (and the incomplete upload may remain: %s)", err, scrub(abortErr.Error()))
}

// classed wraps cause in class, after a description of what was being
// done. The cause's text is scrubbed of URL query strings (the SDK quotes
// request URLs in transport errors); errors.Is and errors.As still reach
// the cause.
func classed(class error, doing string, cause error) error {
	e := &classError{class: class, doing: doing, cause: cause}
	if cause != nil {
		e.msg = scrub(cause.Error())
	}
	return e
}

// classError is the type of the errors Copy and New return.
type classError struct {
	class error // ErrIntegrity, ErrSource, ErrStorage or ErrInvalidRequest
	doing string
	cause error
	msg   string // the cause's text, scrubbed
}

func (e *classError) Error() string {
	s := e.doing + ": " + e.class.Error()
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// Is makes errors.Is(err, ErrIntegrity) and the like work.
func (e *classError) Is(target error) bool { return target == e.class }

func (e *classError) Unwrap() error { return e.cause }

var queryString = regexp.MustCompile(`\?[^\s"']*`)

// scrub removes URL query strings, which could carry credentials, from an
// error text.
func scrub(s string) string {
	if !strings.Contains(s, "?") {
		return s
	}
	return queryString.ReplaceAllStringFunc(s, func(q string) string {
		if strings.Contains(q, "=") {
			return "?…"
		}
		return q
	})
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
