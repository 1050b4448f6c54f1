package task_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/retention"
	"github.com/sdsops/sdsops/internal/task"
	"github.com/sdsops/sdsops/internal/testenv"
)

// stored is one archive a retention case puts in S3.
type stored struct {
	name       string // the case's handle for it
	version    string
	ageDays    int
	unverified bool
	garbage    bool // its manifest cannot be read
	locked     string
}

// Object Lock states of a stored archive's GeoJSON (one object suffices
// to protect the whole archive).
const (
	lockRetention = "retention"
	lockLegalHold = "legal-hold"
	lockExpired   = "expired" // retention that ended yesterday
)

// The outputs a converted archive has beside its XML and manifest.
var archiveOutputs = []string{".geojson", ".schema.json", ".parquet"}

func TestRetentionDeletesExactlyWhatThePolicyAllows(t *testing.T) {
	s3c := testenv.S3(t)
	sfnc := sfn.NewFromConfig(testenv.AWS(t))
	ctx := context.Background()
	// A restore that stays running: a state machine that waits an hour.
	sm, err := sfnc.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String(unique(t, "restore")),
		Definition: aws.String(`{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":3600,"End":true}}}`),
		RoleArn:    aws.String("arn:aws:iam::123456789012:role/x")})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		policy   retention.Policy
		archives []stored
		catalog  string // the archive the catalog names as verified
		restore  string // a running restore's input, with ID for the data source
		deleted  []string
		// protected: kept against the policy, with the reason reported
		protected map[string]string
	}{
		{name: "policy off keeps everything", policy: retention.Policy{},
			archives: []stored{{name: "a", version: "v1", ageDays: 900}, {name: "b", version: "v2", ageDays: 800}, {name: "c", version: "v3", ageDays: 700}}},
		{name: "keep the newest 2 versions", policy: retention.Policy{KeepVersions: 2},
			archives: []stored{{name: "a", version: "v1", ageDays: 400}, {name: "b", version: "v2", ageDays: 300}, {name: "c", version: "v3", ageDays: 200}, {name: "d", version: "v4", ageDays: 100}},
			deleted:  []string{"a", "b"}},
		{name: "keep 1 version and 30 days", policy: retention.Policy{KeepVersions: 1, KeepFor: 30 * 24 * time.Hour},
			archives: []stored{{name: "a", version: "v1", ageDays: 100}, {name: "b", version: "v2", ageDays: 40}, {name: "c", version: "v3", ageDays: 10}, {name: "d", version: "v4", ageDays: 1}},
			deleted:  []string{"a", "b"}},
		{name: "every archive of a kept version stays", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "a", version: "v1", ageDays: 100}, {name: "b", version: "v2", ageDays: 90}, {name: "c", version: "v2", ageDays: 80}},
			deleted:  []string{"a"}},
		{name: "the newest verified archive stays behind newer unverified ones", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "old", version: "v0", ageDays: 200}, {name: "verified", version: "v1", ageDays: 100},
				{name: "u2", version: "v2", ageDays: 50, unverified: true}, {name: "u3", version: "v3", ageDays: 40, unverified: true}},
			deleted: []string{"old"}},
		{name: "an unverified archive older than the newest verified goes", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "u1", version: "v1", ageDays: 100, unverified: true}, {name: "v2", version: "v2", ageDays: 50}},
			deleted:  []string{"u1"}},
		{name: "the catalog's verified archive stays", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "cat", version: "v1", ageDays: 100}, {name: "mid", version: "v2", ageDays: 90}, {name: "new", version: "v3", ageDays: 80}},
			catalog:  "cat", deleted: []string{"mid"}},
		{name: "Object Lock retention and legal hold protect", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "held", version: "v1", ageDays: 400, locked: lockLegalHold}, {name: "retained", version: "v2", ageDays: 300, locked: lockRetention},
				{name: "lapsed", version: "v3", ageDays: 200, locked: lockExpired}, {name: "free", version: "v4", ageDays: 150}, {name: "new", version: "v5", ageDays: 100}},
			deleted: []string{"lapsed", "free"}, protected: map[string]string{"held": retention.KeptObjectLock, "retained": retention.KeptObjectLock}},
		{name: "a running restore of the data source protects all of it", policy: retention.Policy{KeepVersions: 1},
			archives:  []stored{{name: "a", version: "v1", ageDays: 300}, {name: "b", version: "v2", ageDays: 200}, {name: "c", version: "v3", ageDays: 100}},
			restore:   `{"accessId":"ID","dataSourceName":"Places","confirm":"Places"}`,
			protected: map[string]string{"a": retention.KeptInUse, "b": retention.KeptInUse}},
		{name: "a running restore of another data source does not", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "a", version: "v1", ageDays: 300}, {name: "b", version: "v2", ageDays: 200}},
			restore:  `{"accessId":"0ther","dataSourceName":"Places","confirm":"Places"}`, deleted: []string{"a"}},
		{name: "an unreadable manifest keeps its archive", policy: retention.Policy{KeepVersions: 1},
			archives: []stored{{name: "bad", version: "v1", ageDays: 300, garbage: true}, {name: "b", version: "v2", ageDays: 200}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := unique(t, "ret")
			if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
				t.Fatal(err)
			}
			layout := archive.NewLayout("sds-exports/")
			id := catalog.ID{AccessID: fmt.Sprintf("a%031d", i), Name: "Places"}
			now := time.Now().UTC()
			keys := map[string]string{}
			var lapse time.Time
			for j, a := range tc.archives {
				finished := now.Add(-time.Duration(a.ageDays) * 24 * time.Hour)
				key := layout.Key(archive.Ref{AccessID: id.AccessID, DataSourceName: id.Name, Day: finished.Truncate(24 * time.Hour), JobID: fmt.Sprintf("%032x", j+1)})
				keys[a.name] = key
				putArchive(t, s3c, bucket, key, a, finished)
				if a.locked == lockExpired {
					lapse = now.Add(3 * time.Second)
				}
			}
			time.Sleep(time.Until(lapse)) // until a short retention has ended
			store := catalog.New(s3c, bucket, "")
			if _, err := store.UpdateRecord(ctx, id, func(r *catalog.Record) error {
				r.ArchiveKey = keys[tc.catalog]
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if tc.restore != "" {
				in := strings.ReplaceAll(tc.restore, `"ID"`, `"`+id.AccessID+`"`)
				if _, err := sfnc.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Name: aws.String(unique(t, "x")), Input: &in}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					out, _ := sfnc.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: sm.StateMachineArn, StatusFilter: "RUNNING"})
					for _, x := range out.Executions {
						sfnc.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: x.ExecutionArn})
					}
				})
			}
			svc := task.NewService(task.Config{ArchiveBucket: bucket, ArchivePrefix: "sds-exports/", Retention: tc.policy, GuardStateMachines: []string{aws.ToString(sm.StateMachineArn)}},
				task.Deps{Catalog: store, Objects: s3c, Sweep: s3c, Executions: sfnc})
			out, err := svc.Night(ctx, []byte(`{"operation":"retention"}`))
			if err != nil {
				t.Fatal(err)
			}
			var got nightly.RetentionReport
			roundTrip(t, out, &got)
			if b, err := json.Marshal(got); err == nil {
				t.Logf("the report's retention: %s", b)
			}
			if len(got.Errors) > 0 || got.Enabled != tc.policy.Enabled() {
				t.Fatalf("retention: %+v", got)
			}
			var deleted []string
			for _, d := range got.Deleted {
				deleted = append(deleted, nameOf(keys, d.Key))
				if d.Objects != 2+len(archiveOutputs) || d.Reason != retention.DeletedExpired {
					t.Errorf("%s deleted as %d objects (%s), want %d (%s)", d.Key, d.Objects, d.Reason, 2+len(archiveOutputs), retention.DeletedExpired)
				}
			}
			slices.Sort(deleted)
			if want := slices.Sorted(slices.Values(tc.deleted)); !slices.Equal(deleted, want) {
				t.Errorf("deleted %v, want %v", deleted, want)
			}
			protected := map[string]string{}
			for _, p := range got.Protected {
				protected[nameOf(keys, p.Key)] = p.Reason
			}
			if len(protected) != len(tc.protected) || got.ProtectedTotal != len(tc.protected) {
				t.Errorf("protected %v, want %v", protected, tc.protected)
			}
			for n, r := range tc.protected {
				if protected[n] != r {
					t.Errorf("protected %v, want %v", protected, tc.protected)
				}
			}
			// S3 agrees: every object of a deleted archive is gone, every
			// object of the others is there.
			left := map[string]bool{}
			p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("sds-exports/")})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Contents {
					left[aws.ToString(o.Key)] = true
				}
			}
			for n, key := range keys {
				for _, k := range objectsOf(key) {
					if gone := slices.Contains(tc.deleted, n); left[k] == gone {
						t.Errorf("%s: %s present %v, want %v", n, k, left[k], !gone)
					}
				}
			}
		})
	}
}

func nameOf(keys map[string]string, key string) string {
	for n, k := range keys {
		if k == key {
			return n
		}
	}
	return key
}

func objectsOf(key string) []string {
	out := []string{key, key + archive.ManifestSuffix}
	for _, ext := range archiveOutputs {
		out = append(out, archive.Beside(key, ext))
	}
	return out
}

// putArchive writes an archive as a converted backup leaves it: the XML,
// its outputs and, last, its manifest.
func putArchive(t *testing.T, api *s3.Client, bucket, key string, a stored, finished time.Time) {
	t.Helper()
	r, err := archive.NewLayout("sds-exports/").ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{FormatVersion: 1, AccessID: r.AccessID, DataSourceName: r.DataSourceName, JobID: r.JobID, VersionJobID: a.version,
		SHA256: strings.Repeat("ab", 32), Verified: !a.unverified, Bucket: bucket, Key: key, StartedAt: finished.Add(-time.Minute), FinishedAt: finished}
	body, _ := json.Marshal(m)
	if a.garbage {
		body = []byte("not a manifest")
	}
	for _, k := range objectsOf(key)[2:] {
		put(t, api, &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: strings.NewReader("output")}, a.locked)
	}
	put(t, api, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("<xml/>")}, "")
	mk := key + archive.ManifestSuffix
	put(t, api, &s3.PutObjectInput{Bucket: &bucket, Key: &mk, Body: strings.NewReader(string(body))}, "")
}

// put writes an object under the lock named (GeoJSON only: one locked
// object of an archive is enough).
func put(t *testing.T, api *s3.Client, in *s3.PutObjectInput, lock string) {
	t.Helper()
	in.ChecksumAlgorithm = s3types.ChecksumAlgorithmSha256 // Object Lock requires a checksum
	if strings.HasSuffix(*in.Key, ".geojson") {
		switch lock {
		case lockRetention:
			in.ObjectLockMode, in.ObjectLockRetainUntilDate = s3types.ObjectLockModeGovernance, aws.Time(time.Now().Add(24*time.Hour))
		case lockExpired:
			in.ObjectLockMode, in.ObjectLockRetainUntilDate = s3types.ObjectLockModeGovernance, aws.Time(time.Now().Add(2*time.Second))
		case lockLegalHold:
			in.ObjectLockLegalHoldStatus = s3types.ObjectLockLegalHoldStatusOn
		}
	}
	if _, err := api.PutObject(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}
