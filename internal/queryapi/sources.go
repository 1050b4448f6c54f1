package queryapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sdsops/sdsops/internal/query"
)

// Source is one data source as served: its published table, its staged
// one if a staged version was archived, and who may query it.
type Source struct {
	AccessID, Name string
	Public         bool
	QueryKey       *[32]byte // SHA-256 of the data source's query key; nil: it has none
	Published      *query.Table
	Staged         *query.Table
}

// ErrNoSource is a Catalog's answer for a data source it does not serve.
var ErrNoSource = errors.New("no such data source")

// Catalog finds the data source a request names. Any error but
// ErrNoSource is trouble on the server side (503).
type Catalog interface {
	Source(ctx context.Context, accessID, name string) (*Source, error)
}

// Sources is a Catalog held in memory. Put replaces a data source whole:
// a request sees either the old version or the new one, never a mix.
type Sources struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[string]*Source]
}

func sourceKey(accessID, name string) string {
	return strings.ToLower(accessID) + "/" + strings.ToLower(name)
}

// Put serves src, replacing any version of the same data source.
func (s *Sources) Put(src *Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]*Source{}
	if cur := s.m.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	next[sourceKey(src.AccessID, src.Name)] = src
	s.m.Store(&next)
}

// Source implements Catalog.
func (s *Sources) Source(_ context.Context, accessID, name string) (*Source, error) {
	if cur := s.m.Load(); cur != nil {
		if src, ok := (*cur)[sourceKey(accessID, name)]; ok {
			return src, nil
		}
	}
	return nil, ErrNoSource
}

// HashKey is how keys are held: only their SHA-256, so a leaked
// configuration does not leak keys.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }
