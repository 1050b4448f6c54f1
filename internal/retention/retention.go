// Package retention applies a stack's retention policy to the archives of
// one data source: keep the newest KeepVersions verified versions and
// everything younger than KeepFor, delete the rest.
//
// Whatever the policy says, it never deletes the newest verified archive,
// the archive the catalog names as the data source's verified one, an
// archive with an object under S3 Object Lock (retention in force or a
// legal hold), anything of a data source a restore or drill is running
// for (the caller says which), an archive whose manifest cannot be read,
// or a copy in progress (a claim beside the archive).
//
// An archive is deleted manifest first: without its manifest an archive
// is incomplete to every reader (restore, convert, the inventory and the
// Query API read manifests), so an interrupted deletion never leaves
// something that passes for a verified archive. What such an interruption
// leaves (objects without a manifest) is deleted by a later run once it is
// older than KeepFor and two days.
package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/archive"
)

// Policy is a stack's retention policy. The zero Policy keeps everything.
type Policy struct {
	// KeepVersions is how many verified versions of each data source are
	// kept, newest first; 0 switches retention off.
	KeepVersions int
	// KeepFor keeps every archive younger than this.
	KeepFor time.Duration
}

// Enabled reports whether the policy deletes anything at all.
func (p Policy) Enabled() bool { return p.KeepVersions > 0 }

// orphanAge is the least age of objects without a manifest before they
// are deleted: far beyond any copy's run time (15 minutes).
const orphanAge = 48 * time.Hour

// Reasons an archive is kept although the policy's counts would let it go,
// or deleted.
const (
	KeptNewestVerified = "newest-verified"
	KeptCatalog        = "catalog-verified"
	KeptObjectLock     = "object-lock"
	KeptInUse          = "in-use"
	KeptUnreadable     = "manifest-unreadable"
	KeptCopying        = "copy-in-progress"

	DeletedExpired    = "expired"    // older than KeepFor, not among the newest KeepVersions verified versions
	DeletedIncomplete = "incomplete" // objects without a manifest, older than KeepFor and two days
)

// Archive is one archive of a data source as listed in S3: every object
// whose key starts with <day folder>/<jobId>.
type Archive struct {
	Key     string   // the .xml key
	Objects []string // every object of the archive, the manifest among them
	// Manifest is empty when the archive has none.
	Manifest string
	// ClaimedAt is when a copy last renewed its claim on the archive
	// (zero: no claim); a copy renews it every few seconds.
	ClaimedAt time.Time
	// From the manifest: Readable is false when it exists but cannot be
	// read or does not describe the archive.
	Readable   bool
	Verified   bool
	Version    string // versionJobId, else the download job's id
	FinishedAt time.Time
	// Modified is the newest LastModified of its objects.
	Modified time.Time
}

// Age is how old the archive is at now: from its manifest's finish time,
// else its objects' last change.
func (a Archive) Age(now time.Time) time.Duration {
	if !a.FinishedAt.IsZero() {
		return now.Sub(a.FinishedAt)
	}
	return now.Sub(a.Modified)
}

// Decision is what the policy makes of one archive.
type Decision struct {
	Archive
	Delete bool
	Reason string // why kept (only when the policy alone would delete it) or deleted
}

// Decide applies p to the archives of one data source. catalogKey is the
// archive the catalog records as the verified one (kept whatever its age).
// Archives the policy keeps for their age or version carry no reason.
func Decide(p Policy, now time.Time, archives []Archive, catalogKey string) []Decision {
	out := make([]Decision, len(archives))
	order := make([]int, len(archives))
	for i := range archives {
		out[i].Archive = archives[i]
		order[i] = i
	}
	if !p.Enabled() {
		return out
	}
	// Newest first: by finish time (falling back on the objects' time),
	// then by key.
	at := func(a Archive) time.Time { return cmp.Or(a.FinishedAt, a.Modified) }
	slices.SortStableFunc(order, func(i, j int) int {
		return cmp.Or(at(archives[j]).Compare(at(archives[i])), strings.Compare(archives[j].Key, archives[i].Key))
	})
	recent := map[string]bool{}
	newestVerified := -1
	for _, i := range order {
		a := archives[i]
		if !a.Verified || !a.Readable {
			continue
		}
		if newestVerified < 0 {
			newestVerified = i
		}
		if len(recent) < p.KeepVersions {
			recent[strings.ToLower(a.Version)] = true
		}
	}
	for _, i := range order {
		a, d := archives[i], &out[i]
		young := a.Age(now) < p.KeepFor
		switch {
		case !a.ClaimedAt.IsZero() && now.Sub(a.ClaimedAt) < orphanAge:
			d.Reason = KeptCopying
		case a.Manifest == "":
			if !young && a.Age(now) >= orphanAge {
				d.Delete, d.Reason = true, DeletedIncomplete
			}
		case !a.Readable:
			d.Reason = KeptUnreadable
		case i == newestVerified:
			d.Reason = KeptNewestVerified
		case catalogKey != "" && a.Key == catalogKey:
			d.Reason = KeptCatalog
		case young:
		case a.Verified && recent[strings.ToLower(a.Version)]:
		case !a.Verified && newestVerified >= 0 && at(a).After(at(archives[newestVerified])):
			// An unverified archive newer than every verified one is the
			// latest the service gave: kept until a verified one follows.
		default:
			d.Delete, d.Reason = true, DeletedExpired
		}
	}
	return out
}

// S3 is what the sweep needs of S3.
type S3 interface {
	archive.Lister
	archive.Getter
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Sweeper lists, judges and deletes the archives of a bucket.
type Sweeper struct {
	API    S3
	Bucket string
	Layout archive.Layout
}

// Archives lists a data source's archives with what their manifests say.
func (s Sweeper) Archives(ctx context.Context, accessID, name string) ([]Archive, error) {
	prefix := s.Layout.DataSourcePrefix(accessID, name)
	byBase := map[string]*Archive{}
	var bases []string
	p := s3.NewListObjectsV2Paginator(s.API, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("retention: list s3://%s/%s: %w", s.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			slash := strings.LastIndexByte(key, '/')
			dot := strings.IndexByte(key[slash+1:], '.')
			if dot < 0 {
				continue
			}
			base := key[:slash+1+dot]
			xml := base + archive.ObjectSuffix
			if _, err := s.Layout.ParseKey(xml); err != nil {
				continue // not of the layout: not an archive sdsops wrote
			}
			a, ok := byBase[base]
			if !ok {
				a = &Archive{Key: xml}
				byBase[base] = a
				bases = append(bases, base)
			}
			a.Objects = append(a.Objects, key)
			switch key {
			case xml + archive.ManifestSuffix:
				a.Manifest = key
			case xml + archive.ClaimSuffix:
				if o.LastModified != nil {
					a.ClaimedAt = o.LastModified.UTC()
				}
			}
			if o.LastModified != nil && o.LastModified.After(a.Modified) {
				a.Modified = o.LastModified.UTC()
			}
		}
	}
	out := make([]Archive, 0, len(bases))
	for _, b := range bases {
		a := byBase[b]
		if a.Manifest != "" {
			sm, err := archive.ReadManifest(ctx, s.API, s.Bucket, a.Manifest)
			switch {
			case errors.Is(err, archive.ErrNoManifest):
				a.Manifest = "" // deleted since the listing
			case errors.Is(err, archive.ErrBadManifest):
			case err != nil:
				return nil, fmt.Errorf("retention: %w", err)
			default:
				m := sm.Manifest
				a.Readable = s.Layout.CheckManifest(m, s.Bucket, a.Key) == nil
				a.Verified, a.FinishedAt = m.Verified, m.FinishedAt.UTC()
				a.Version = cmp.Or(m.VersionJobID, m.JobID)
			}
		}
		out = append(out, *a)
	}
	return out, nil
}

// Locked reports the first object of a that S3 Object Lock protects at
// now (a retention date in the future, or a legal hold), or "".
// HeadObject shows the lock only to a caller allowed
// s3:GetObjectRetention and s3:GetObjectLegalHold.
func (s Sweeper) Locked(ctx context.Context, a Archive, now time.Time) (string, error) {
	for _, key := range a.Objects {
		h, err := s.API.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
		if err != nil {
			return "", fmt.Errorf("retention: head s3://%s/%s: %w", s.Bucket, key, err)
		}
		if h.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn {
			return key, nil
		}
		if h.ObjectLockMode != "" && h.ObjectLockRetainUntilDate != nil && h.ObjectLockRetainUntilDate.After(now) {
			return key, nil
		}
	}
	return "", nil
}

// Delete removes every object of a: the manifest first, so that what an
// interruption leaves is incomplete, never a verified archive; then the
// XML; then its other outputs. In a versioned bucket each delete leaves a
// delete marker, and the lifecycle's noncurrent expiration removes the
// data later.
func (s Sweeper) Delete(ctx context.Context, a Archive) error {
	keys := slices.Clone(a.Objects)
	rank := func(k string) int {
		switch k {
		case a.Manifest:
			return 0
		case a.Key:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(keys, func(x, y string) int { return rank(x) - rank(y) })
	for _, key := range keys {
		if _, err := s.API.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
			return fmt.Errorf("retention: delete s3://%s/%s: %w", s.Bucket, key, err)
		}
	}
	return nil
}
