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
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/geojson"
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
	} else if next.Published, err = c.load(ctx, rec.Name, pub); err != nil {
		return nil, err
	}
	if cur != nil && staged.sum == e.staged {
		next.Staged = cur.Staged
	} else if staged.key != "" {
		if next.Staged, err = c.load(ctx, rec.Name, staged); err != nil {
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

// archived is an archive to serve: its key, the sha256 verified for it
// and its manifest (for the GeoParquet its conversion recorded).
type archived struct {
	key, sum string
	m        *archive.Manifest
}

func archivedOf(m archive.Manifest) archived {
	m.SHA256 = strings.ToLower(m.SHA256)
	return archived{m.Key, m.SHA256, &m}
}

// QueryKey is the hash of the data source's query key, if it has one:
// the handler refuses a wrong key with it before anything is loaded.
func (c *Catalog) QueryKey(accessID, name string) *[32]byte {
	k, ok := c.QueryKeys[catalog.ID{AccessID: accessID, Name: name}.Key()]
	if !ok {
		return nil
	}
	return &k
}

// withRecord serves src with the visibility the catalog records now
// (switching public and private needs no reload) and stores it.
func (c *Catalog) withRecord(src *queryapi.Source, rec catalog.Record, id catalog.ID) *queryapi.Source {
	next := *src
	next.AccessID, next.Name, next.Public = rec.AccessID, rec.Name, rec.Visibility == catalog.Public
	next.QueryKey = c.QueryKey(id.AccessID, id.Name)
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
		pub = archivedOf(best.m)
	case rec.ArchiveKey != "" && rec.VerifiedVersion != "" && len(rec.SHA256) == 64:
		pub = archivedOf(archive.Manifest{Key: rec.ArchiveKey, SHA256: rec.SHA256})
	default:
		return pub, staged, queryapi.ErrNoSource // never archived and verified
	}
	if bestStaged != nil && (best == nil || newer(*bestStaged, best) &&
		(bestStaged.m.VersionJobID == "" || !strings.EqualFold(bestStaged.m.VersionJobID, best.m.VersionJobID))) {
		staged = archivedOf(bestStaged.m)
	}
	return pub, staged, nil
}

// load reads the archive a: from the GeoParquet its
// conversion recorded where there is one that holds every value, else
// from the XML.
func (c *Catalog) load(ctx context.Context, name string, a archived) (*query.Table, error) {
	m := a.m
	tb, err := c.loadGeoParquet(ctx, m)
	if err == nil {
		return tb, nil
	}
	if !errors.Is(err, errNoGeoParquet) {
		// The XML is what was verified: a missing, altered or inexact
		// GeoParquet costs a slower load, never the data source.
		lvl := slog.LevelError
		if errors.Is(err, query.ErrInexact) {
			lvl = slog.LevelInfo
		}
		c.logger().Log(ctx, lvl, "query: loading the XML instead of the GeoParquet", "key", m.Key, "error", err)
	}
	return c.loadXML(ctx, name, m.Key, m.SHA256)
}

// errNoGeoParquet: the manifest records no GeoParquet of this archive.
var errNoGeoParquet = errors.New("no GeoParquet recorded")

// loadGeoParquet loads the GeoParquet and the schema document that m's
// conversion record names, each checked against the sha256 recorded for
// it, the record itself made from this archive's bytes.
func (c *Catalog) loadGeoParquet(ctx context.Context, m *archive.Manifest) (*query.Table, error) {
	rec, err := conversion.RecordOf(*m)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", m.Key, err)
	}
	if rec == nil || rec.GeoParquet == nil {
		return nil, errNoGeoParquet
	}
	if !strings.EqualFold(rec.SourceSHA256, m.SHA256) {
		return nil, fmt.Errorf("the GeoParquet of %s was made from other bytes (%s)", m.Key, rec.SourceSHA256)
	}
	doc, err := c.verified(ctx, rec.Schema, maxSchemaBytes)
	if err != nil {
		return nil, err
	}
	l, err := loaderOf(doc)
	if err != nil {
		return nil, fmt.Errorf("schema document %s: %w", rec.Schema.Key, err)
	}
	if l.EntityType != m.EntityType && m.EntityType != "" {
		return nil, fmt.Errorf("schema document %s is of entity type %q, the archive of %q", rec.Schema.Key, l.EntityType, m.EntityType)
	}
	for _, col := range l.Columns {
		if col.Type == dataset.Geography {
			// Refused before the file is read: see query.GeoParquetLoader.
			return nil, fmt.Errorf("geography column %q: %w", col.Name, query.ErrInexact)
		}
	}
	pq, err := c.verified(ctx, rec.GeoParquet.File, maxParquetBytes)
	if err != nil {
		return nil, err
	}
	tb, err := l.Load(ctx, bytes.NewReader(pq))
	if err != nil {
		return nil, fmt.Errorf("load s3://%s/%s: %w", c.Bucket, rec.GeoParquet.Key, err)
	}
	if int64(tb.Len()) != rec.GeoParquet.Rows {
		return nil, fmt.Errorf("s3://%s/%s: %d rows, %d recorded", c.Bucket, rec.GeoParquet.Key, tb.Len(), rec.GeoParquet.Rows)
	}
	return tb, nil
}

// Bounds of what is read into memory for one GeoParquet load: the file of
// the largest legal data source (300 MB of XML) is far smaller.
const (
	maxSchemaBytes  = 1 << 20
	maxParquetBytes = 1 << 30
)

// verified reads the file f whole and checks it against its recorded size
// and sha256.
func (c *Catalog) verified(ctx context.Context, f conversion.File, limit int64) ([]byte, error) {
	if f.Key == "" || f.Bytes < 0 || f.Bytes > limit {
		return nil, fmt.Errorf("s3://%s/%s: %d bytes recorded, at most %d read", c.Bucket, f.Key, f.Bytes, limit)
	}
	obj, err := c.Objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.Bucket, Key: &f.Key})
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", c.Bucket, f.Key, err)
	}
	defer obj.Body.Close()
	b := make([]byte, 0, f.Bytes+1) // +1: room to see a longer object
	buf := bytes.NewBuffer(b)
	if _, err := io.Copy(buf, io.LimitReader(obj.Body, f.Bytes+1)); err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", c.Bucket, f.Key, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if got := hex.EncodeToString(sum[:]); int64(buf.Len()) != f.Bytes || !strings.EqualFold(got, f.SHA256) {
		return nil, fmt.Errorf("s3://%s/%s: %w (recorded %s, read %s)", c.Bucket, f.Key, ErrTampered, f.SHA256, got)
	}
	return buf.Bytes(), nil
}

// loaderOf reads a schema document (geojson.SchemaDoc) into the loader of
// its GeoParquet.
func loaderOf(doc []byte) (query.GeoParquetLoader, error) {
	var d geojson.SchemaDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return query.GeoParquetLoader{}, err
	}
	l := query.GeoParquetLoader{EntityType: d.EntityType, Key: d.Key}
	for _, col := range d.Columns {
		t, ok := dataset.ParseType(col.Type)
		if !ok {
			return query.GeoParquetLoader{}, fmt.Errorf("column %q of unknown type %q", col.Name, col.Type)
		}
		l.Columns = append(l.Columns, query.Column{Name: col.Name, Type: t})
	}
	return l, nil
}

// loadXML reads an archive and checks its bytes against the sha256
// verified for it.
func (c *Catalog) loadXML(ctx context.Context, name, key, sum string) (*query.Table, error) {
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
