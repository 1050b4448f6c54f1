// Package queryarchive serves data sources to the Query API from their
// newest verified archives in S3: a queryapi.Catalog that reads S3 only,
// never SDS.
//
// A data source is known when the catalog has a record of it (which also
// says whether it is public). Its newest verified archive is the newest
// archive whose manifest says verified, with the sha256 it recorded: the
// catalog's verified version is one of them, and a backup on request,
// which the catalog cannot tie to a version, is another. A data source is
// loaded on its first request and checked again at most every Recheck; a
// newer verified archive is loaded beside the served one and replaces it
// in one step, so no request sees half of each. An archive whose bytes do
// not match the sha256 verified for it is never served: the version
// before it stays.
//
// An archive of a staged version (its manifest says staging) is never
// served as the published one; it answers isStaging=true while it is
// newer than the published archive served and of another version (once
// the staged version is published and backed up, it is that).
package queryarchive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/query"
	"github.com/sdsops/sdsops/internal/queryapi"
	"github.com/sdsops/sdsops/internal/sds"
)

// DefaultRecheck is how stale a served version may be before the catalog
// is read again.
const DefaultRecheck = time.Minute

// Records reads catalog records (catalog.Store).
type Records interface {
	Get(ctx context.Context, id catalog.ID) (catalog.Record, error)
}

// Objects lists and reads archives and their manifests.
type Objects interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// maxManifests bounds how many manifests, newest first, are read to find
// a verified one.
const maxManifests = 20

// ErrTampered: an archive's bytes are not those the catalog verified.
var ErrTampered = errors.New("archive does not match its verified sha256")

// Catalog implements queryapi.Catalog over the sdsops catalog and bucket.
type Catalog struct {
	Records Records
	Objects Objects
	Bucket  string
	Prefix  string // of the archives; "" for archive.DefaultPrefix
	// QueryKeys are the SHA-256 hashes of data sources' query keys, by
	// catalog.ID.Key(); a data source without one answers the account's keys.
	QueryKeys map[string][32]byte
	Recheck   time.Duration // 0: DefaultRecheck
	Log       *slog.Logger  // nil: slog.Default()
	Now       func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is one data source's served version.
type entry struct {
	load    sync.Mutex // one catalog check or load at a time
	src     atomic.Pointer[queryapi.Source]
	sha     string // of the served archive
	staged  string // of the served staged archive; "" for none
	checked atomic.Int64
}

// Source implements queryapi.Catalog.
func (c *Catalog) Source(ctx context.Context, accessID, name string) (*queryapi.Source, error) {
	if (sds.DataSource{AccessID: accessID, Name: name}).Validate() != nil {
		return nil, queryapi.ErrNoSource
	}
	id := catalog.ID{AccessID: accessID, Name: name}
	e := c.entry(id)
	cur := e.src.Load()
	if cur != nil && c.now().Sub(time.Unix(0, e.checked.Load())) < c.recheck() {
		return cur, nil
	}
	if cur != nil && !e.load.TryLock() {
		return cur, nil // another request is checking: serve what there is meanwhile
	} else if cur == nil {
		e.load.Lock()
	}
	defer e.load.Unlock()
	if now := e.src.Load(); now != cur && now != nil {
		return now, nil // loaded while this request waited
	}
	src, err := c.refresh(ctx, id, e)
	if err != nil && cur != nil && !errors.Is(err, queryapi.ErrNoSource) {
		c.logger().Error("query: keeping the served version", "dataSource", id.String(), "error", err)
		e.checked.Store(c.now().UnixNano())
		return cur, nil
	}
	return src, err
}

func (c *Catalog) entry(id catalog.ID) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*entry{}
	}
	e, ok := c.entries[id.Key()]
	if !ok {
		e = &entry{}
		c.entries[id.Key()] = e
	}
	return e
}

// refresh reads the catalog record and loads its archive if it is not the
// one served. Called with e.load held.
func (c *Catalog) refresh(ctx context.Context, id catalog.ID, e *entry) (*queryapi.Source, error) {
	rec, err := c.Records.Get(ctx, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, queryapi.ErrNoSource
	}
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", id, err)
	}
	pub, staged, err := c.newestVerified(ctx, rec)
	if err != nil {
		return nil, err
	}
	cur := e.src.Load()
	if cur != nil && pub.sum == e.sha && staged.sum == e.staged {
		e.checked.Store(c.now().UnixNano())
		return c.withRecord(cur, rec, id), nil
	}
	next := &queryapi.Source{}
	if cur != nil && pub.sum == e.sha {
		next.Published = cur.Published
	} else if next.Published, err = c.load(ctx, rec.Name, pub.key, pub.sum); err != nil {
		return nil, err
	}
	if cur != nil && staged.sum == e.staged {
		next.Staged = cur.Staged
	} else if staged.key != "" {
		if next.Staged, err = c.load(ctx, rec.Name, staged.key, staged.sum); err != nil {
			// The published version is still worth serving.
			c.logger().Error("query: staged version not served", "dataSource", id.String(), "error", err)
			staged = archived{}
		}
	}
	src := c.withRecord(next, rec, id)
	e.sha, e.staged = pub.sum, staged.sum
	e.checked.Store(c.now().UnixNano())
	return src, nil
}

// archived is an archive to serve: its key and the sha256 verified for it.
type archived struct{ key, sum string }

// withRecord serves src with the visibility the catalog records now
// (switching public and private needs no reload) and stores it.
func (c *Catalog) withRecord(src *queryapi.Source, rec catalog.Record, id catalog.ID) *queryapi.Source {
	next := *src
	next.AccessID, next.Name, next.Public = rec.AccessID, rec.Name, rec.Visibility == catalog.Public
	next.QueryKey = nil
	if k, ok := c.QueryKeys[id.Key()]; ok {
		next.QueryKey = &k
	}
	c.entry(id).src.Store(&next)
	return &next
}

// newestVerified finds the newest archive of rec's published version
// whose manifest says verified, and the sha256 it recorded; without one,
// the archive the catalog names. Newest is by the job's date in the key,
// then by when the copy finished: not by the manifest's last
// modification, which a later conversion of an old archive renews. staged
// is the newest verified archive of a staged version newer than the
// published one and of another version, if any.
func (c *Catalog) newestVerified(ctx context.Context, rec catalog.Record) (pub, staged archived, err error) {
	l := archive.NewLayout(c.Prefix)
	type candidate struct {
		m   archive.Manifest
		day time.Time
	}
	newer := func(a candidate, b *candidate) bool {
		return b == nil || a.day.After(b.day) || a.day.Equal(b.day) && a.m.FinishedAt.After(b.m.FinishedAt)
	}
	var best, bestStaged *candidate
	read := 0
	_, err = l.NewestFirst(ctx, c.Objects, c.Bucket, rec.AccessID, rec.Name, func(day time.Time, keys []string) (bool, error) {
		for _, k := range keys {
			if read++; read > maxManifests {
				return true, nil
			}
			sm, err := archive.ReadManifest(ctx, c.Objects, c.Bucket, k)
			if errors.Is(err, archive.ErrStorage) {
				return false, err
			}
			if err != nil {
				continue // a broken manifest is no candidate
			}
			m := sm.Manifest
			if !m.Verified || l.CheckManifest(m, c.Bucket, strings.TrimSuffix(k, archive.ManifestSuffix)) != nil {
				continue
			}
			cd := candidate{m, day}
			if m.Staging && newer(cd, bestStaged) {
				bestStaged = &cd
			} else if !m.Staging && newer(cd, best) {
				best = &cd
			}
		}
		// Days are visited newest first: a staged archive newer than the
		// published one has been seen by the day the published one is found.
		return best != nil, nil
	})
	if err != nil {
		return pub, staged, fmt.Errorf("find the newest verified archive of %s/%s: %w", rec.AccessID, rec.Name, err)
	}
	switch {
	case best != nil:
		pub = archived{best.m.Key, strings.ToLower(best.m.SHA256)}
	case rec.ArchiveKey != "" && rec.VerifiedVersion != "" && len(rec.SHA256) == 64:
		pub = archived{rec.ArchiveKey, rec.SHA256}
	default:
		return pub, staged, queryapi.ErrNoSource // never archived and verified
	}
	if bestStaged != nil && (best == nil || newer(*bestStaged, best) &&
		(bestStaged.m.VersionJobID == "" || !strings.EqualFold(bestStaged.m.VersionJobID, best.m.VersionJobID))) {
		staged = archived{bestStaged.m.Key, strings.ToLower(bestStaged.m.SHA256)}
	}
	return pub, staged, nil
}

// load reads an archive and checks its bytes against the sha256 verified
// for it.
func (c *Catalog) load(ctx context.Context, name, key, sum string) (*query.Table, error) {
	obj, err := c.Objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.Bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", c.Bucket, key, err)
	}
	defer obj.Body.Close()
	h := sha256.New()
	body := io.TeeReader(obj.Body, h)
	tb, err := query.DataSetLoader{DataSetName: name}.Load(ctx, body)
	if _, cerr := io.Copy(io.Discard, body); err == nil && cerr != nil {
		err = cerr
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return nil, fmt.Errorf("s3://%s/%s: %w (verified %s, read %s)", c.Bucket, key, ErrTampered, sum, got)
	}
	if err != nil {
		return nil, fmt.Errorf("load s3://%s/%s: %w", c.Bucket, key, err)
	}
	return tb, nil
}

func (c *Catalog) recheck() time.Duration {
	if c.Recheck > 0 {
		return c.Recheck
	}
	return DefaultRecheck
}

func (c *Catalog) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Catalog) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}
