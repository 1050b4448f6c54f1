// Package locktest runs the workflows end to end (moto executing the real
// state machines, the real function binaries, the SDS emulator) against an
// archive bucket with S3 Object Lock, the functions locking in COMPLIANCE
// mode: backup (copy, manifest, conversion updating the manifest, catalog
// record), a conversion backfill, delete with its backup first, and
// restores reading the locked archives.
package locktest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/s3err"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/testenv"
)

const accessID = "20181f26d9e94c81acdf9496133d4f23" // the sample account's

var (
	env       *localrun.Env
	retention = archive.Retention{Mode: s3types.ObjectLockModeCompliance, Days: 3}
)

func TestMain(m *testing.M) {
	var err error
	env, err = localrun.Start(context.Background(), localrun.Options{RepoRoot: "../..", SkipWaits: true, Retention: retention,
		FunctionEnv: map[string]string{"SDS_TIMEOUT": "2s"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local deployment:", err)
		os.Exit(1)
	}
	env.Emulator.SetTiming(sdsemu.Timing{})
	testenv.Main(m, func() error { env.Stop(); return nil })
}

func run(t *testing.T, machine string, input any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	x, err := env.Run(ctx, machine, fmt.Sprintf("%s-%d", machine, time.Now().UnixNano()), input)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("%s: status %s: %s %s", machine, x.Status, x.Error, x.Cause)
	}
	return x.Output
}

type version struct {
	key, id string
	mode    s3types.ObjectLockMode
	until   time.Time
}

// allVersions lists every object version in the bucket with its lock.
func allVersions(t *testing.T) []version {
	t.Helper()
	ctx := context.Background()
	var vs []version
	p := s3.NewListObjectVersionsPaginator(env.S3, &s3.ListObjectVersionsInput{Bucket: &env.Bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			h, err := env.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &env.Bucket, Key: v.Key, VersionId: v.VersionId})
			if err != nil {
				t.Fatalf("head %s version %s: %v", aws.ToString(v.Key), aws.ToString(v.VersionId), err)
			}
			vs = append(vs, version{aws.ToString(v.Key), aws.ToString(v.VersionId), h.ObjectLockMode, aws.ToTime(h.ObjectLockRetainUntilDate)})
		}
	}
	return vs
}

// mustBeLocked says which keys must be locked: the XML, the manifest, the
// GeoJSON, the schema document and the GeoParquet; never a claim, the
// catalog or anything else.
func mustBeLocked(key string) bool {
	if !strings.HasPrefix(key, "sds-exports/") {
		return false
	}
	for _, suffix := range []string{".xml", archive.ManifestSuffix, ".geojson", ".schema.json", ".parquet"} {
		if strings.HasSuffix(key, suffix) && !strings.Contains(key, ".failed.") {
			return true
		}
	}
	return false
}

func TestWorkflowsUnderComplianceLock(t *testing.T) {
	ctx := context.Background()
	const name = "Stores-2019"

	// Backup: copy, manifest, conversion updating the manifest, catalog.
	first := run(t, "backup", map[string]any{"accessId": accessID, "dataSourceName": name})
	key, _ := first["key"].(string)
	mkey := key + archive.ManifestSuffix
	if key == "" || first["catalogError"] != nil || first["conversion"] == nil {
		t.Fatalf("backup output %v", first)
	}
	// Nothing removes a locked archive version.
	vs := allVersions(t)
	for _, v := range vs {
		if v.key != key {
			continue
		}
		_, err := env.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &env.Bucket, Key: &v.key, VersionId: &v.id, BypassGovernanceRetention: aws.Bool(true)})
		if s3err.Code(err) != "AccessDenied" {
			t.Errorf("delete of the archive's version %s: %v, want AccessDenied", v.id, err)
		}
	}

	// A backfill of the GeoParquet: the manifest as an older conversion
	// left it, then convert updates it again (If-Match), a new version.
	out, err := env.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &env.Bucket, Key: &mkey})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(out.Body)
	out.Body.Close()
	old := bytes.Replace(buf.Bytes(), []byte(`"geoparquet"`), []byte(`"geoparquetBefore"`), 1)
	if _, err := env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &env.Bucket, Key: &mkey, Body: bytes.NewReader(old), IfMatch: out.ETag,
		ObjectLockMode: retention.Mode, ObjectLockRetainUntilDate: aws.Time(retention.Until(time.Now())), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32}); err != nil {
		t.Fatal(err)
	}
	conv := run(t, "convert", map[string]any{"key": key})
	if conv["status"] != "Converted" {
		t.Fatalf("convert output %v", conv)
	}

	// Delete with its backup first, then restores of the locked archives:
	// the first one into the deleted name, the newest into a new name.
	del := run(t, "delete", map[string]any{"accessId": accessID, "dataSourceName": name, "confirm": name})
	back := run(t, "restore", map[string]any{"archiveKey": key, "confirm": name})
	if back["published"] != true || back["entityCount"] != 140.0 {
		t.Fatalf("restore output %v", back)
	}
	newID := back["accessId"].(string)
	cp := run(t, "restore", map[string]any{"accessId": accessID, "dataSourceName": name, "targetName": "StoresCopy", "confirm": "StoresCopy"})
	if cp["published"] != true || cp["archiveKey"] == key {
		t.Fatalf("restore of the newest archive: %v (delete output %v)", cp, del)
	}
	run(t, "backup", map[string]any{"accessId": newID, "dataSourceName": name})

	// Every version of what must not be lost is locked for the retention,
	// every other one is not.
	soon := time.Now().Add(time.Duration(retention.Days)*24*time.Hour - time.Hour)
	count := map[string]int{}
	for _, v := range allVersions(t) {
		lockedWant := mustBeLocked(v.key)
		switch {
		case lockedWant && (v.mode != retention.Mode || v.until.Before(soon)):
			t.Errorf("%s version %s: lock %q until %v, want %s for %d days", v.key, v.id, v.mode, v.until, retention.Mode, retention.Days)
		case !lockedWant && v.mode != "":
			t.Errorf("%s version %s is locked (%s until %v): it must stay deletable", v.key, v.id, v.mode, v.until)
		}
		kind := "other"
		switch {
		case strings.HasPrefix(v.key, "catalog/"):
			kind = "catalog"
		case strings.HasSuffix(v.key, archive.ClaimSuffix):
			kind = "claim"
		case lockedWant:
			kind = "locked " + v.key[strings.LastIndex(v.key, "."):]
		}
		count[kind]++
	}
	t.Logf("object versions: %v", count)
	if count["locked .xml"] < 3 || count["locked .json"] < 6 || count["locked .parquet"] < 3 || count["locked .geojson"] < 3 || count["catalog"] < 4 || count["claim"] < 3 {
		t.Errorf("versions %v: the flows wrote less than expected", count)
	}
	// The key's manifest has the copy's, the conversion's, the test's and
	// the backfill's versions.
	n := 0
	for _, v := range allVersions(t) {
		if v.key == mkey {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d versions of %s, want 4", n, mkey)
	}
}
