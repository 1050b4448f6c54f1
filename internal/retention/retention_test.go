package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/retention"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDecideLeftoversAndCopies(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	verified := func(key string, age time.Duration) retention.Archive {
		return retention.Archive{Key: key, Manifest: key + archive.ManifestSuffix, Readable: true, Verified: true, Version: key, FinishedAt: now.Add(-age)}
	}
	cases := []struct {
		name   string
		policy retention.Policy
		in     retention.Archive
		delete bool
		reason string
	}{
		{"objects without a manifest, old", retention.Policy{KeepVersions: 1}, retention.Archive{Key: "x", Modified: now.Add(-3 * day)}, true, retention.DeletedIncomplete},
		{"objects without a manifest, a day old (a copy may still be at work)", retention.Policy{KeepVersions: 1}, retention.Archive{Key: "x", Modified: now.Add(-day)}, false, ""},
		{"objects without a manifest, younger than KeepFor", retention.Policy{KeepVersions: 1, KeepFor: 10 * day}, retention.Archive{Key: "x", Modified: now.Add(-5 * day)}, false, ""},
		{"objects without a manifest, policy off", retention.Policy{}, retention.Archive{Key: "x", Modified: now.Add(-300 * day)}, false, ""},
		{"a claim renewed an hour ago", retention.Policy{KeepVersions: 1}, retention.Archive{Key: "x", Modified: now.Add(-300 * day), ClaimedAt: now.Add(-time.Hour)}, false, retention.KeptCopying},
		{"a claim abandoned long ago", retention.Policy{KeepVersions: 1}, retention.Archive{Key: "x", Modified: now.Add(-300 * day), ClaimedAt: now.Add(-300 * day)}, true, retention.DeletedIncomplete},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A newer verified archive beside it, which always stays.
			ds := retention.Decide(tc.policy, now, []retention.Archive{tc.in, verified("newest", time.Hour)}, "")
			if ds[0].Delete != tc.delete || ds[0].Reason != tc.reason {
				t.Errorf("delete %v (%q), want %v (%q)", ds[0].Delete, ds[0].Reason, tc.delete, tc.reason)
			}
			if ds[1].Delete {
				t.Error("the newest verified archive is to be deleted")
			}
		})
	}
}

// failAfter deletes through S3 until n deletions, then fails: a run
// stopped in the middle of an archive.
type failAfter struct {
	*s3.Client
	n       int
	deleted []string
}

func (f *failAfter) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	if len(f.deleted) == f.n {
		return nil, errors.New("stopped")
	}
	f.deleted = append(f.deleted, aws.ToString(in.Key))
	return f.Client.DeleteObject(ctx, in, opts...)
}

func TestInterruptedDeletionLeavesNoVerifiedArchive(t *testing.T) {
	ctx := context.Background()
	api := testenv.S3(t)
	bucket := testenv.Bucket(t, api)
	layout := archive.NewLayout("")
	key := layout.Key(archive.Ref{AccessID: "a1", DataSourceName: "Places", Day: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), JobID: strings.Repeat("c", 32)})
	m, _ := json.Marshal(archive.Manifest{FormatVersion: 1, AccessID: "a1", DataSourceName: "Places", JobID: strings.Repeat("c", 32), VersionJobID: "v1",
		SHA256: strings.Repeat("ab", 32), Verified: true, Bucket: bucket, Key: key, FinishedAt: time.Now().Add(-400 * 24 * time.Hour)})
	for k, body := range map[string]string{archive.Beside(key, ".geojson"): "{}", archive.Beside(key, ".parquet"): "PAR1", key: "<xml/>", key + archive.ManifestSuffix: string(m)} {
		if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	sw := retention.Sweeper{API: &failAfter{Client: api, n: 1}, Bucket: bucket, Layout: layout}
	as, err := sw.Archives(ctx, "a1", "Places")
	if err != nil || len(as) != 1 || !as[0].Verified || len(as[0].Objects) != 4 {
		t.Fatalf("archives %+v, %v", as, err)
	}
	if err := sw.Delete(ctx, as[0]); err == nil {
		t.Fatal("the interrupted deletion reported success")
	}
	if got := sw.API.(*failAfter).deleted; len(got) != 1 || got[0] != key+archive.ManifestSuffix {
		t.Fatalf("deleted first %v, want the manifest", got)
	}
	// What is left is incomplete to every reader: no manifest.
	if _, err := archive.ReadManifest(ctx, api, bucket, key+archive.ManifestSuffix); !errors.Is(err, archive.ErrNoManifest) {
		t.Errorf("the manifest is still readable: %v", err)
	}
	as, err = sw.Archives(ctx, "a1", "Places")
	if err != nil || len(as) != 1 || as[0].Verified || as[0].Manifest != "" || len(as[0].Objects) != 3 {
		t.Fatalf("after the interruption: %+v, %v", as, err)
	}
	// A later run deletes the rest.
	full := retention.Sweeper{API: api, Bucket: bucket, Layout: layout}
	if err := full.Delete(ctx, as[0]); err != nil {
		t.Fatal(err)
	}
	if as, err = full.Archives(ctx, "a1", "Places"); err != nil || len(as) != 0 {
		t.Errorf("left: %+v, %v", as, err)
	}
}
