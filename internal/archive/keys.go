package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/sds"
)

// The key layout of an archive under a Layout's prefix:
//
//	<prefix><accessId>/<dataSourceName>/<yyyy>/<mm>/<dd>/<jobId>.xml
//
// with its manifest at the same key plus ManifestSuffix and further outputs
// (GeoJSON, schema, a load's failed entities) beside it as <jobId><ext>.
// The date is the download job's creation day (UTC), so a listing in key
// order is oldest first.
const (
	// ManifestSuffix ends every manifest key: the archive's key with it
	// appended.
	ManifestSuffix = ".manifest.json"
	// ObjectSuffix ends every archive key.
	ObjectSuffix = ".xml"
	// MaxKeyBytes is S3's limit on a key's length.
	MaxKeyBytes = 1024
	// MaxManifestBytes bounds what is read of a manifest.
	MaxManifestBytes = 1 << 20

	dayLayout = "2006/01/02"
)

// ErrInvalidKey is the class of every key a Layout refuses.
var ErrInvalidKey = errors.New("not an archive key")

// Layout builds and parses the keys of the archives under one prefix.
type Layout struct{ prefix string }

// NewLayout returns the layout under prefix (DefaultPrefix when empty; a
// trailing slash is added when missing).
func NewLayout(prefix string) Layout {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Layout{prefix: prefix}
}

// Layout is the key layout of the Store's archives.
func (s *Store) Layout() Layout { return NewLayout(s.cfg.Prefix) }

// Prefix starts every key of the layout; it ends in '/'.
func (l Layout) Prefix() string { return l.prefix }

// Ref is what an archive's key says: whose export it is, of which day and
// which download job.
type Ref struct {
	AccessID, DataSourceName string
	Day                      time.Time // UTC midnight of the job's creation day
	JobID                    string
}

// Key is the archive's key.
func (l Layout) Key(r Ref) string {
	return l.DataSourcePrefix(r.AccessID, r.DataSourceName) + r.Day.UTC().Format(dayLayout) + "/" + r.JobID + ObjectSuffix
}

// ManifestKey is the key of the archive's manifest.
func (l Layout) ManifestKey(r Ref) string { return l.Key(r) + ManifestSuffix }

// Beside is the key of an output stored beside the archive at key:
// <jobId><ext> in its folder.
func Beside(key, ext string) string {
	return strings.TrimSuffix(strings.TrimSuffix(key, ManifestSuffix), ObjectSuffix) + ext
}

// DataSourcePrefix is the folder of one data source's archives.
func (l Layout) DataSourcePrefix(accessID, name string) string {
	return l.prefix + accessID + "/" + name + "/"
}

// DayPrefix is the folder of one data source's archives of one day.
func (l Layout) DayPrefix(accessID, name string, day time.Time) string {
	return l.DataSourcePrefix(accessID, name) + day.UTC().Format(dayLayout) + "/"
}

// Parse checks that key is an archive's key or its manifest's in this
// layout, exactly as Key and ManifestKey spell them (so normalized: no
// "..", "." or empty segments, no control characters), and at most
// MaxKeyBytes long with its manifest suffix. manifest tells which of the
// two it is.
func (l Layout) Parse(key string) (r Ref, manifest bool, err error) {
	bad := func(why string, args ...any) (Ref, bool, error) {
		return Ref{}, false, fmt.Errorf("%w: %q %s", ErrInvalidKey, clip(key, 200), fmt.Sprintf(why, args...))
	}
	switch {
	case !utf8.ValidString(key):
		return bad("is not valid UTF-8")
	case len(key) > MaxKeyBytes:
		return bad("is %d bytes long; S3 keys have at most %d", len(key), MaxKeyBytes)
	case !strings.HasPrefix(key, l.prefix):
		return bad("is not under the archive prefix %q", l.prefix)
	}
	rest := strings.TrimPrefix(key, l.prefix)
	if manifest = strings.HasSuffix(rest, ManifestSuffix); manifest {
		rest = strings.TrimSuffix(rest, ManifestSuffix)
	}
	if !strings.HasSuffix(rest, ObjectSuffix) {
		return bad("does not end in %s or %s%s", ObjectSuffix, ObjectSuffix, ManifestSuffix)
	}
	parts := strings.Split(strings.TrimSuffix(rest, ObjectSuffix), "/")
	if len(parts) != 6 {
		return bad("is not <accessId>/<dataSourceName>/<yyyy>/<mm>/<dd>/<jobId>%s under %q", ObjectSuffix, l.prefix)
	}
	if err := checkSegments(parts); err != nil {
		return bad("%v", err)
	}
	day, _ := time.Parse(dayLayout, strings.Join(parts[2:5], "/"))
	r = Ref{AccessID: parts[0], DataSourceName: parts[1], Day: day, JobID: parts[5]}
	if len(l.ManifestKey(r)) > MaxKeyBytes {
		return bad("leaves no room for its manifest's key within %d bytes", MaxKeyBytes)
	}
	return r, manifest, nil
}

// ParseKey is Parse for an archive's key only.
func (l Layout) ParseKey(key string) (Ref, error) {
	r, manifest, err := l.Parse(key)
	if err == nil && manifest {
		err = fmt.Errorf("%w: %q is a manifest's key; give its archive's (…/<jobId>%s)", ErrInvalidKey, clip(key, 200), ObjectSuffix)
	}
	return r, err
}

// ParseManifestKey is Parse for a manifest's key only.
func (l Layout) ParseManifestKey(key string) (Ref, error) {
	r, manifest, err := l.Parse(key)
	if err == nil && !manifest {
		err = fmt.Errorf("%w: %q is an archive's key, not its manifest's", ErrInvalidKey, clip(key, 200))
	}
	return r, err
}

// ListPrefix checks a prefix to list archives under: one taken below the
// layout's prefix when it does not start with it, whose complete segments
// are the leading segments of an archive key (accessId, dataSourceName,
// yyyy, mm, dd) and whose last, possibly partial, segment is no "." or
// "..". It returns the prefix to list.
func (l Layout) ListPrefix(p string) (string, error) {
	bad := func(why string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: prefix %q %s", ErrInvalidKey, clip(p, 200), fmt.Sprintf(why, args...))
	}
	if !utf8.ValidString(p) {
		return bad("is not valid UTF-8")
	}
	if !strings.HasPrefix(p, l.prefix) {
		p = l.prefix + strings.TrimPrefix(p, "/")
	}
	if len(p) > MaxKeyBytes {
		return bad("is %d bytes long; S3 keys have at most %d", len(p), MaxKeyBytes)
	}
	parts := strings.Split(strings.TrimPrefix(p, l.prefix), "/")
	whole, last := parts[:len(parts)-1], parts[len(parts)-1]
	if len(whole) > 5 {
		return bad("has more folders than <accessId>/<dataSourceName>/<yyyy>/<mm>/<dd>/")
	}
	if err := checkSegments(whole); err != nil {
		return bad("%v", err)
	}
	if last == "." || last == ".." || strings.IndexFunc(last, isControl) >= 0 || strings.ContainsRune(last, '\\') {
		return bad("ends in %q", clip(last, 80))
	}
	return p, nil
}

// checkSegments checks the leading segments of an archive key:
// accessId, dataSourceName, yyyy, mm, dd and jobId, as many as given.
func checkSegments(parts []string) error {
	checks := []func(string) error{
		sds.ValidateAccessID,
		sds.ValidateName,
		digits("year", 4), digits("month", 2), digits("day", 2),
		sds.ValidateJobID,
	}
	for i, p := range parts {
		if err := checks[i](p); err != nil {
			var se *sds.Error
			if errors.As(err, &se) {
				return errors.New(se.Message)
			}
			return err
		}
	}
	if len(parts) >= 5 {
		d := strings.Join(parts[2:5], "/")
		if t, err := time.Parse(dayLayout, d); err != nil || t.Format(dayLayout) != d {
			return fmt.Errorf("date %s is not a day", d)
		}
	}
	return nil
}

func digits(what string, n int) func(string) error {
	return func(s string) error {
		if len(s) != n || strings.Trim(s, "0123456789") != "" {
			return fmt.Errorf("%s %q: want %d digits", what, clip(s, 40), n)
		}
		return nil
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Lister is what walking the archives needs of S3.
type Lister interface {
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// ManifestsOf lists the manifest keys of a data source's archives of one
// day, in key order.
func (l Layout) ManifestsOf(ctx context.Context, api Lister, bucket, accessID, name string, day time.Time) ([]string, error) {
	prefix := l.DayPrefix(accessID, name, day)
	var keys []string
	err := list(ctx, api, bucket, prefix, func(o *s3.ListObjectsV2Output) {
		for _, c := range o.Contents {
			if c.Key == nil {
				continue
			}
			if _, m, err := l.Parse(*c.Key); err == nil && m {
				keys = append(keys, *c.Key)
			}
		}
	})
	return keys, err
}

// NewestFirst walks the days holding a data source's archives, newest
// first, calling fn with each day's manifest keys (in key order) until fn
// returns stop. It lists the year, month and day folders with a
// delimiter, so the requests grow with the days visited, not with the
// archives: a data source with thousands of archives costs a few
// listings to reach its newest. more reports whether older days were left
// unvisited.
func (l Layout) NewestFirst(ctx context.Context, api Lister, bucket, accessID, name string, fn func(day time.Time, manifests []string) (stop bool, err error)) (more bool, err error) {
	var walk func(prefix string, depth int) (stop bool, err error)
	walk = func(prefix string, depth int) (bool, error) {
		folders, err := l.folders(ctx, api, bucket, prefix, depth)
		if err != nil {
			return false, err
		}
		for i, f := range folders {
			var stop bool
			if depth == 2 {
				day, err := time.Parse(dayLayout, strings.TrimSuffix(strings.TrimPrefix(f, l.DataSourcePrefix(accessID, name)), "/"))
				if err != nil {
					continue // not a day: no archive of the layout is under it
				}
				keys, err := l.ManifestsOf(ctx, api, bucket, accessID, name, day)
				if err != nil {
					return false, err
				}
				if len(keys) > 0 {
					if stop, err = fn(day, keys); err != nil {
						return false, err
					}
				}
			} else if stop, err = walk(f, depth+1); err != nil {
				return false, err
			}
			if stop {
				more = more || i < len(folders)-1
				return true, nil
			}
		}
		return false, nil
	}
	_, err = walk(l.DataSourcePrefix(accessID, name), 0)
	return more, err
}

// folders lists the year (depth 0), month (1) or day (2) folders under
// prefix, newest first; folders that are not dates are left out.
func (l Layout) folders(ctx context.Context, api Lister, bucket, prefix string, depth int) ([]string, error) {
	width := 2
	if depth == 0 {
		width = 4
	}
	check := digits("folder", width)
	var out []string
	err := list(ctx, api, bucket, prefix, func(o *s3.ListObjectsV2Output) {
		for _, c := range o.CommonPrefixes {
			if c.Prefix == nil {
				continue
			}
			if check(strings.TrimSuffix(strings.TrimPrefix(*c.Prefix, prefix), "/")) == nil {
				out = append(out, *c.Prefix)
			}
		}
	})
	slices.Sort(out)
	slices.Reverse(out)
	return out, err
}

// list lists the direct children of prefix, page by page.
func list(ctx context.Context, api Lister, bucket, prefix string, page func(*s3.ListObjectsV2Output)) error {
	p := s3.NewListObjectsV2Paginator(api, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix, Delimiter: ptr("/")})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return classed(ErrStorage, "list s3://"+bucket+"/"+prefix, err)
		}
		page(out)
	}
	return nil
}
