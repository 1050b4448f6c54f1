package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/sds"
)

// API is the part of the S3 client the store uses.
type API interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Retry policy of a conditional read-modify-write that lost a race: attempts
// in all, and the backoff between them (full jitter, doubling).
const (
	DefaultMaxAttempts = 10
	baseBackoff        = 20 * time.Millisecond
	maxBackoff         = time.Second
)

// maxObjectBytes bounds what is read back: a record is a few KB, the index
// about 300 bytes per data source.
const maxObjectBytes = 8 << 20

// Errors a caller can branch on with errors.Is.
var (
	// ErrNotFound: the data source has no record yet.
	ErrNotFound = errors.New("catalog record not found")
	// ErrConflict: every attempt lost the race against other writers.
	ErrConflict = errors.New("catalog write kept conflicting with other writers")
	// ErrIndexNotUpdated: the record was written but the index could not be;
	// the next UpdateIndex carrying the record brings it up to date.
	ErrIndexNotUpdated = errors.New("catalog index not updated")
)

// Store reads and writes the catalog under one bucket and prefix.
type Store struct {
	api         API
	bucket      string
	prefix      string
	maxAttempts int
	now         func() time.Time
	// beforePut, when set (tests), runs between the read and the write of
	// every read-modify-write.
	beforePut func(key string)
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock stamped into Updated (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithMaxAttempts bounds the attempts of one conditional write.
func WithMaxAttempts(n int) Option { return func(s *Store) { s.maxAttempts = max(1, n) } }

// New returns a store for bucket; prefix ("" or ending in "/") goes before
// every key.
func New(api API, bucket, prefix string, opts ...Option) *Store {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &Store{api: api, bucket: bucket, prefix: prefix, maxAttempts: DefaultMaxAttempts, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// RecordKey is the S3 key of id's record.
func (s *Store) RecordKey(id ID) string {
	return s.prefix + "catalog/v1/sources/" + strings.ToLower(id.AccessID) + "/" + strings.ToLower(id.Name) + ".json"
}

// IndexKey is the S3 key of the index.
func (s *Store) IndexKey() string { return s.prefix + "catalog/v1/index.json" }

func checkID(id ID) error {
	if err := (sds.DataSource{AccessID: id.AccessID, Name: id.Name}).Validate(); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

// Get returns id's record, or an error matching ErrNotFound.
func (s *Store) Get(ctx context.Context, id ID) (Record, error) {
	if err := checkID(id); err != nil {
		return Record{}, err
	}
	r, _, err := s.getRecord(ctx, id)
	return r, err
}

func (s *Store) getRecord(ctx context.Context, id ID) (Record, string, error) {
	data, etag, err := s.get(ctx, s.RecordKey(id))
	if err != nil {
		return Record{}, "", fmt.Errorf("catalog: read %s: %w", id, err)
	}
	r, err := decodeRecord(data, id)
	if err != nil {
		return Record{}, "", fmt.Errorf("catalog: %w", err)
	}
	r.etag = etag
	return r, etag, nil
}

// Update applies mutate to id's record (a new one when it has none) and
// writes it back conditionally, then brings the index up to date. On a lost
// race it reads the record again and calls mutate again on the fresh copy,
// so mutate must derive its change from the record it is given. An error
// from mutate stops the update and nothing is written. An error matching
// ErrIndexNotUpdated comes with the written record.
func (s *Store) Update(ctx context.Context, id ID, mutate func(*Record) error) (Record, error) {
	r, err := s.UpdateRecord(ctx, id, mutate)
	if err != nil {
		return Record{}, err
	}
	if err := s.UpdateIndex(ctx, r); err != nil {
		return r, err
	}
	return r, nil
}

// UpdateRecord is Update without the index, for callers that write many
// records and then the index once (UpdateIndex).
func (s *Store) UpdateRecord(ctx context.Context, id ID, mutate func(*Record) error) (Record, error) {
	return s.update(ctx, id, nil, mutate)
}

// UpdateFrom is UpdateRecord starting from cur, a record as Get, List or an
// update returned it: while cur is still the stored revision, the write
// needs no read. A stale cur costs one failed conditional write.
func (s *Store) UpdateFrom(ctx context.Context, cur Record, mutate func(*Record) error) (Record, error) {
	if cur.etag == "" {
		return s.update(ctx, cur.ID(), nil, mutate)
	}
	return s.update(ctx, cur.ID(), &cur, mutate)
}

func (s *Store) update(ctx context.Context, id ID, known *Record, mutate func(*Record) error) (Record, error) {
	if err := checkID(id); err != nil {
		return Record{}, err
	}
	key := s.RecordKey(id)
	for attempt := 1; ; attempt++ {
		var cur Record
		var err error
		if attempt == 1 && known != nil {
			cur = *known
			err = cur.validate(id)
		} else {
			cur, _, err = s.getRecord(ctx, id)
		}
		if errors.Is(err, ErrNotFound) {
			cur = Record{Schema: SchemaVersion, AccessID: id.AccessID, Name: id.Name}
		} else if err != nil {
			return Record{}, err
		}
		next := cur
		next.Jobs = slices.Clone(cur.Jobs)
		if err := mutate(&next); err != nil {
			return Record{}, fmt.Errorf("catalog: update %s: %w", id, err)
		}
		now := s.now().UTC()
		next.Schema, next.Updated, next.Revision = SchemaVersion, now, cur.Revision+1
		if next.FirstSeen.IsZero() {
			next.FirstSeen = now
		}
		if err := next.validate(id); err != nil {
			return Record{}, fmt.Errorf("catalog: update %s: %w", id, err)
		}
		data, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return Record{}, fmt.Errorf("catalog: encode %s: %w", id, err)
		}
		next.etag, err = s.put(ctx, key, data, cur.etag)
		if err == nil {
			return next, nil
		}
		if !isConflict(err) {
			return Record{}, fmt.Errorf("catalog: write %s: %w", id, err)
		}
		if attempt >= s.maxAttempts {
			return Record{}, fmt.Errorf("catalog: write %s: %w after %d attempts", id, ErrConflict, attempt)
		}
		if attempt == 1 && known != nil {
			continue // the caller's copy was stale: read now, no need to wait
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return Record{}, fmt.Errorf("catalog: write %s: %w", id, err)
		}
	}
}

// listParallel bounds the concurrent reads of List.
const listParallel = 8

// List reads every record, sorted by access id and name. It reads the
// records themselves, not the index, which may lag behind them.
func (s *Store) List(ctx context.Context) ([]Record, error) {
	dir := s.prefix + "catalog/v1/sources/"
	var ids []ID
	p := s3.NewListObjectsV2Paginator(s.api, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &dir})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("catalog: list: %w", err)
		}
		for _, o := range page.Contents {
			rest, ok := strings.CutSuffix(strings.TrimPrefix(aws.ToString(o.Key), dir), ".json")
			accessID, name, ok2 := strings.Cut(rest, "/")
			if !ok || !ok2 || checkID(ID{accessID, name}) != nil {
				continue // not a record
			}
			ids = append(ids, ID{accessID, name})
		}
	}
	recs := make([]Record, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, listParallel)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			recs[i], _, errs[i] = s.getRecord(ctx, id)
		}()
	}
	wg.Wait()
	out := recs[:0]
	for i, err := range errs {
		switch {
		case errors.Is(err, ErrNotFound): // deleted since listed
		case err != nil:
			return nil, err
		default:
			out = append(out, recs[i])
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.ID().Key(), b.ID().Key()) })
	return out, nil
}

// Index returns the index; an empty one when none was written yet.
func (s *Store) Index(ctx context.Context) (Index, error) {
	x, _, err := s.getIndex(ctx)
	return x, err
}

func (s *Store) getIndex(ctx context.Context) (Index, string, error) {
	data, etag, err := s.get(ctx, s.IndexKey())
	if errors.Is(err, ErrNotFound) {
		return Index{Schema: SchemaVersion, DataSources: []IndexEntry{}}, "", nil
	}
	if err != nil {
		return Index{}, "", fmt.Errorf("catalog: read index: %w", err)
	}
	var x Index
	if err := json.Unmarshal(data, &x); err != nil {
		return Index{}, "", fmt.Errorf("catalog: index: %w: %v", ErrInvalidRecord, err)
	}
	if x.Schema != SchemaVersion {
		return Index{}, "", fmt.Errorf("catalog: index: %w: schema %d, want %d", ErrInvalidRecord, x.Schema, SchemaVersion)
	}
	if x.DataSources == nil {
		x.DataSources = []IndexEntry{}
	}
	slices.SortFunc(x.DataSources, func(a, b IndexEntry) int {
		return strings.Compare(ID{a.AccessID, a.Name}.Key(), ID{b.AccessID, b.Name}.Key())
	})
	return x, etag, nil
}

// UpdateIndex merges the summaries of recs into the index, conditionally,
// keeping the newer revision of each record. Failing that it returns an
// error matching ErrIndexNotUpdated.
func (s *Store) UpdateIndex(ctx context.Context, recs ...Record) error {
	for attempt := 1; ; attempt++ {
		x, etag, err := s.getIndex(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrIndexNotUpdated, err)
		}
		if !x.merge(recs) && etag != "" {
			return nil
		}
		x.Updated = s.now().UTC()
		data, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("%w: encode: %w", ErrIndexNotUpdated, err)
		}
		_, err = s.put(ctx, s.IndexKey(), data, etag)
		if err == nil {
			return nil
		}
		if !isConflict(err) || attempt >= s.maxAttempts {
			return fmt.Errorf("%w: %w", ErrIndexNotUpdated, err)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return fmt.Errorf("%w: %w", ErrIndexNotUpdated, err)
		}
	}
}

// get reads key, returning its bytes and ETag.
func (s *Store) get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil, "", fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, "", err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxObjectBytes+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > maxObjectBytes {
		return nil, "", fmt.Errorf("%s is larger than %d bytes", key, maxObjectBytes)
	}
	if out.ETag == nil || *out.ETag == "" {
		return nil, "", fmt.Errorf("%s: S3 sent no ETag", key)
	}
	return data, *out.ETag, nil
}

// put writes key only if it still has etag, or, with etag empty, only if it
// does not exist. It returns the new ETag ("" if S3 sent none).
func (s *Store) put(ctx context.Context, key string, data []byte, etag string) (string, error) {
	if s.beforePut != nil {
		s.beforePut(key)
	}
	in := &s3.PutObjectInput{
		Bucket:      &s.bucket,
		Key:         &key,
		Body:        bytes.NewReader(data),
		ContentType: aws.String("application/json"),
	}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = &etag
	}
	out, err := s.api.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// isConflict: the object changed (412), a concurrent conditional write is in
// flight (409 ConditionalRequestConflict), or it was deleted since it was
// read (404 to If-Match). All are resolved by reading again.
func isConflict(err error) bool {
	switch statusOf(err) {
	case http.StatusPreconditionFailed, http.StatusConflict, http.StatusNotFound:
		return true
	}
	return false
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func backoff(attempt int) time.Duration {
	ceiling := baseBackoff << min(attempt-1, 10)
	if ceiling > maxBackoff {
		ceiling = maxBackoff
	}
	return rand.N(ceiling + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
