package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/backoff"
	"github.com/sdsops/sdsops/internal/s3err"
	"github.com/sdsops/sdsops/internal/sds"
)

// API is the part of the S3 client the store uses.
type API interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Retry policy of a conditional read-modify-write that lost a race: attempts
// in all, and the backoff between them.
const DefaultMaxAttempts = 10

var conflictBackoff = backoff.Policy{Base: 20 * time.Millisecond, Max: time.Second}

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
	// ErrCorrupt: a stored record or index is not one this sdsops can read
	// (garbage, another data source's, a newer format). The error names
	// the object. Reading again does not help: Repair replaces a record,
	// keeping the damaged one aside; RebuildIndex rebuilds the index.
	ErrCorrupt = errors.New("damaged catalog object")
)

// Damaged is a record List could not read.
type Damaged struct {
	AccessID string `json:"accessId"`
	Name     string `json:"name"`
	Key      string `json:"key"`     // the S3 key of the damaged record
	Problem  string `json:"problem"` // why it cannot be read
}

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

// getRecord reads id's record. A damaged one comes back as an error
// matching ErrCorrupt, with the damaged object's ETag and bytes for Repair.
func (s *Store) getRecord(ctx context.Context, id ID) (Record, *damagedObject, error) {
	key := s.RecordKey(id)
	data, etag, err := s.get(ctx, key)
	if err != nil {
		return Record{}, nil, fmt.Errorf("catalog: read %s: %w", id, err)
	}
	r, err := decodeRecord(data, id)
	if err != nil {
		return Record{}, &damagedObject{key: key, etag: etag, data: data}, s.corrupt(key, err)
	}
	r.etag = etag
	return r, nil, nil
}

// indexedRevision is the revision the index holds for id, 0 when it holds
// none or cannot be read.
func (s *Store) indexedRevision(ctx context.Context, id ID) int64 {
	x, _, err := s.getIndex(ctx)
	if err != nil {
		return 0
	}
	for _, e := range x.DataSources {
		if (ID{e.AccessID, e.Name}).Key() == id.Key() {
			return e.Revision
		}
	}
	return 0
}

// damagedObject is a stored object that failed to decode, as read.
type damagedObject struct {
	key, etag string
	data      []byte
}

func (s *Store) corrupt(key string, err error) error {
	return fmt.Errorf("catalog: s3://%s/%s: %w: %w", s.bucket, key, ErrCorrupt, err)
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
	r, _, err := s.update(ctx, id, nil, mutate, false)
	return r, err
}

// Repair is Update that also replaces a damaged record, which Update
// refuses (ErrCorrupt): the damaged object is first copied to DamagedKey
// (never overwriting an earlier copy), then replaced by a new record
// only while it is still the object copied (If-Match). keptAt is the
// copy's key when a damaged record was replaced, "" otherwise.
func (s *Store) Repair(ctx context.Context, id ID, mutate func(*Record) error) (rec Record, keptAt string, err error) {
	rec, keptAt, err = s.update(ctx, id, nil, mutate, true)
	if err != nil {
		return Record{}, keptAt, err
	}
	return rec, keptAt, s.UpdateIndex(ctx, rec)
}

// DamagedKey is where Repair keeps a damaged record whose ETag is etag:
// one copy per damaged revision.
func (s *Store) DamagedKey(id ID, etag string) string {
	sum := sha256.Sum256([]byte(etag))
	return s.prefix + "catalog/v1/damaged/" + strings.ToLower(id.AccessID) + "/" + strings.ToLower(id.Name) + "/" + hex.EncodeToString(sum[:8]) + ".json"
}

// keep copies a damaged record to its DamagedKey. A copy already there is
// of the same revision (the key derives from its ETag).
func (s *Store) keep(ctx context.Context, id ID, d *damagedObject) (string, error) {
	key := s.DamagedKey(id, d.etag)
	if _, err := s.put(ctx, key, d.data, ""); err != nil && !s3err.PreconditionFailed(err) {
		return "", fmt.Errorf("catalog: keep damaged %s at %s: %w", d.key, key, err)
	}
	return key, nil
}

// UpdateFrom is UpdateRecord starting from cur, a record as Get, List or an
// update returned it: while cur is still the stored revision, the write
// needs no read. A stale cur costs one failed conditional write.
func (s *Store) UpdateFrom(ctx context.Context, cur Record, mutate func(*Record) error) (Record, error) {
	var known *Record
	if cur.etag != "" {
		known = &cur
	}
	r, _, err := s.update(ctx, cur.ID(), known, mutate, false)
	return r, err
}

func (s *Store) update(ctx context.Context, id ID, known *Record, mutate func(*Record) error, repair bool) (Record, string, error) {
	if err := checkID(id); err != nil {
		return Record{}, "", err
	}
	key := s.RecordKey(id)
	keptAt := ""
	for attempt := 1; ; attempt++ {
		var cur Record
		var damaged *damagedObject
		var err error
		if attempt == 1 && known != nil {
			cur = *known
			err = cur.validate(id)
		} else {
			cur, damaged, err = s.getRecord(ctx, id)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			cur = Record{Schema: SchemaVersion, AccessID: id.AccessID, Name: id.Name}
		case damaged != nil && repair:
			if keptAt, err = s.keep(ctx, id, damaged); err != nil {
				return Record{}, "", err
			}
			// A new record, written only over the revision just kept. Its
			// revision continues the index's, so that the index takes it.
			cur = Record{Schema: SchemaVersion, AccessID: id.AccessID, Name: id.Name, etag: damaged.etag,
				Revision: s.indexedRevision(ctx, id)}
		case err != nil:
			return Record{}, "", err
		}
		next := cur
		next.Jobs = slices.Clone(cur.Jobs)
		if err := mutate(&next); err != nil {
			return Record{}, "", fmt.Errorf("catalog: update %s: %w", id, err)
		}
		now := s.now().UTC()
		next.Schema, next.Updated, next.Revision = SchemaVersion, now, cur.Revision+1
		if next.FirstSeen.IsZero() {
			next.FirstSeen = now
		}
		if err := next.validate(id); err != nil {
			return Record{}, "", fmt.Errorf("catalog: update %s: %w", id, err)
		}
		data, err := json.MarshalIndent(next, "", "  ")
		if err != nil {
			return Record{}, "", fmt.Errorf("catalog: encode %s: %w", id, err)
		}
		next.etag, err = s.put(ctx, key, data, cur.etag)
		if err == nil {
			return next, keptAt, nil
		}
		if !isConflict(err) {
			return Record{}, "", fmt.Errorf("catalog: write %s: %w", id, err)
		}
		if attempt >= s.maxAttempts {
			return Record{}, "", fmt.Errorf("catalog: write %s: %w after %d attempts", id, ErrConflict, attempt)
		}
		if attempt == 1 && known != nil {
			continue // the caller's copy was stale: read now, no need to wait
		}
		if err := backoff.Sleep(ctx, conflictBackoff.Wait(attempt)); err != nil {
			return Record{}, "", fmt.Errorf("catalog: write %s: %w", id, err)
		}
	}
}

// listParallel bounds the concurrent reads of List.
const listParallel = 8

// List reads every record, sorted by access id and name, and reports the
// damaged ones apart instead of failing for them: one bad object must not
// hide all the others. It reads the records themselves, not the index,
// which may lag behind them.
func (s *Store) List(ctx context.Context) ([]Record, []Damaged, error) {
	dir := s.prefix + "catalog/v1/sources/"
	var ids []ID
	p := s3.NewListObjectsV2Paginator(s.api, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &dir})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("catalog: list: %w", err)
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
	var damaged []Damaged
	for i, err := range errs {
		switch {
		case errors.Is(err, ErrNotFound): // deleted since listed
		case errors.Is(err, ErrCorrupt):
			damaged = append(damaged, Damaged{AccessID: ids[i].AccessID, Name: ids[i].Name, Key: s.RecordKey(ids[i]), Problem: err.Error()})
		case err != nil:
			return nil, nil, err
		default:
			out = append(out, recs[i])
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.ID().Key(), b.ID().Key()) })
	return out, damaged, nil
}

// Index returns the index; an empty one when none was written yet. An
// index that cannot be read is rebuilt from the records (RebuildIndex):
// the records are the truth, the index only their summary.
func (s *Store) Index(ctx context.Context) (Index, error) {
	x, _, err := s.getIndex(ctx)
	if errors.Is(err, ErrCorrupt) {
		return s.RebuildIndex(ctx)
	}
	return x, err
}

// getIndex reads the index and its ETag ("" when there is none). A damaged
// index comes back as an error matching ErrCorrupt, with its ETag.
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
		return Index{}, etag, s.corrupt(s.IndexKey(), err)
	}
	if x.Schema != SchemaVersion {
		return Index{}, etag, s.corrupt(s.IndexKey(), fmt.Errorf("schema %d, want %d", x.Schema, SchemaVersion))
	}
	if x.DataSources == nil {
		x.DataSources = []IndexEntry{}
	}
	slices.SortFunc(x.DataSources, func(a, b IndexEntry) int {
		return strings.Compare(ID{a.AccessID, a.Name}.Key(), ID{b.AccessID, b.Name}.Key())
	})
	return x, etag, nil
}

// RebuildIndex writes the index anew from every record (List), with the
// damaged ones in Index.Damaged. It replaces only the index it read
// (If-Match, or If-None-Match when there was none); after a lost race it
// reads again and keeps a readable index written meanwhile.
func (s *Store) RebuildIndex(ctx context.Context) (Index, error) {
	for attempt := 1; ; attempt++ {
		_, etag, err := s.getIndex(ctx)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return Index{}, err
		}
		recs, damaged, err := s.List(ctx)
		if err != nil {
			return Index{}, err
		}
		x := Index{Schema: SchemaVersion, Updated: s.now().UTC(), DataSources: []IndexEntry{}, Damaged: damaged}
		x.merge(recs)
		data, err := json.Marshal(x)
		if err != nil {
			return Index{}, fmt.Errorf("catalog: encode index: %w", err)
		}
		_, err = s.put(ctx, s.IndexKey(), data, etag)
		if err == nil {
			return x, nil
		}
		if !isConflict(err) || attempt >= s.maxAttempts {
			return Index{}, fmt.Errorf("catalog: rebuild index: %w", err)
		}
		if err := backoff.Sleep(ctx, conflictBackoff.Wait(attempt)); err != nil {
			return Index{}, fmt.Errorf("catalog: rebuild index: %w", err)
		}
	}
}

// UpdateIndex merges the summaries of recs into the index, conditionally,
// keeping the newer revision of each record; an index that cannot be read
// is rebuilt from the records instead. Failing that it returns an error
// matching ErrIndexNotUpdated.
func (s *Store) UpdateIndex(ctx context.Context, recs ...Record) error {
	return s.updateIndex(ctx, func(x *Index) bool { return x.merge(recs) })
}

// ReportDamaged replaces the index's list of damaged records with damaged
// (as List found them), so that the inventory shows them.
func (s *Store) ReportDamaged(ctx context.Context, damaged []Damaged) error {
	return s.updateIndex(ctx, func(x *Index) bool {
		if slices.Equal(x.Damaged, damaged) {
			return false
		}
		x.Damaged = slices.Clone(damaged)
		return true
	})
}

// updateIndex applies change to the index and writes it conditionally,
// retrying lost races; change reports whether it changed anything.
func (s *Store) updateIndex(ctx context.Context, change func(*Index) bool) error {
	for attempt := 1; ; attempt++ {
		x, etag, err := s.getIndex(ctx)
		if errors.Is(err, ErrCorrupt) {
			if x, err = s.RebuildIndex(ctx); err != nil {
				return fmt.Errorf("%w: %w", ErrIndexNotUpdated, err)
			}
			// The rebuilt index holds every record as stored now; the
			// change still applies on top (a record may be newer).
			_, etag, err = s.getIndex(ctx)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrIndexNotUpdated, err)
		}
		if !change(&x) && etag != "" {
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
		if err := backoff.Sleep(ctx, conflictBackoff.Wait(attempt)); err != nil {
			return fmt.Errorf("%w: %w", ErrIndexNotUpdated, err)
		}
	}
}

// get reads key, returning its bytes and ETag.
func (s *Store) get(ctx context.Context, key string) ([]byte, string, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if s3err.NotFound(err) {
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
	return s3err.PreconditionFailed(err) || s3err.NotFound(err) || s3err.Status(err) == http.StatusConflict
}

// throttleKey marks, with its time, the last 429 from the SDS job limits.
func (s *Store) throttleKey() string { return s.prefix + "catalog/v1/throttled.json" }

type throttleMark struct {
	At time.Time `json:"at"`
}

// MarkThrottled records that the SDS job limits answered 429 at at.
func (s *Store) MarkThrottled(ctx context.Context, at time.Time) error {
	return s.putMark(ctx, s.throttleKey(), throttleMark{At: at.UTC()})
}

// putMark writes the mark v at key, whatever is there: a mark, unlike a
// record, has one writer at a time.
func (s *Store) putMark(ctx context.Context, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.api.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body), ContentType: aws.String("application/json")})
	if err != nil {
		return fmt.Errorf("catalog: write %s: %w", key, err)
	}
	return nil
}

// ThrottledAt is when the job limits last answered 429; zero when never,
// or when the mark cannot be read (it only ever stops work early).
func (s *Store) ThrottledAt(ctx context.Context) (time.Time, error) {
	data, _, err := s.get(ctx, s.throttleKey())
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("catalog: read %s: %w", s.throttleKey(), err)
	}
	var m throttleMark
	if json.Unmarshal(data, &m) != nil {
		return time.Time{}, nil
	}
	return m.At, nil
}
