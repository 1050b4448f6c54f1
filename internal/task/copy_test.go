package task_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/sdsemu"
)

// TestCopyChecksDownloadURLFirst: the event is checked completely before
// anything is decided, so a download link to another host (or a version id
// that is not one) is refused also when the job is archived already.
func TestCopyChecksDownloadURLFirst(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.backupToCompleted()
	good, _ := st["downloadUrl"].(string)
	path := strings.TrimPrefix(good, f.srv.URL)
	bad := []struct{ name, field, value string }{
		{"another host", "downloadUrl", "https://downloads.example.net" + path},
		{"another port", "downloadUrl", "http://127.0.0.1:1" + path},
		{"credentials in host", "downloadUrl", strings.Replace(good, "://", "://user:pw@", 1)},
		{"outside /REST/v1", "downloadUrl", f.srv.URL + "/elsewhere/output"},
		{"not a URL", "downloadUrl", "output/succeeded"},
		{"version not a job id", "versionJobId", "../../other"},
	}
	check := func(when string) {
		t.Helper()
		for _, b := range bad {
			ev := maps.Clone(st)
			ev[b.field] = b.value
			if out, typ, msg := f.invoke("copytos3", ev); typ != "InvalidInput" {
				t.Errorf("%s, %s: %s %s %v, want InvalidInput", when, b.name, typ, msg, out)
			}
		}
	}
	check("no archive yet")
	if objects, _ := objectCount(t, f.bucket); objects != 0 {
		t.Fatalf("%d objects after refused copies", objects)
	}
	f.mustInvoke("copytos3", st)
	check("archive in place")
}

// TestCopyEmptyDataSource: a Completed job whose total is 0 and whose
// export holds no entity is archived as verified; a total of 0 with
// entities in the export, or no total at all, stays unverified.
func TestCopyEmptyDataSource(t *testing.T) {
	const transitAccessID, transitKey = "6b1c9e2f04d84a7f9a3e5d7c8b2f1e40", "sdsemu-master-key-transit"
	completed := func(f *fixture, accessID, name string) map[string]any {
		t.Helper()
		st := f.mustInvoke("startdownload", map[string]any{"accessId": accessID, "dataSourceName": name})
		f.completeJobs()
		st = f.mustInvoke("checkstatus", st)
		if st["status"] != "Completed" {
			t.Fatalf("check: %v", st)
		}
		return st
	}

	t.Run("empty", func(t *testing.T) {
		f := newFixture(t, transitKey, nil)
		st := completed(f, transitAccessID, "EmptyPlaces")
		if total, ok := st["totalEntityCount"]; !ok || total != 0.0 {
			t.Fatalf("checkstatus gives totalEntityCount %v (present %v), want 0", total, ok)
		}
		out, typ, msg := f.invoke("copytos3", st)
		if typ != "" || out["verified"] != true || out["entityCount"] != 0.0 {
			t.Fatalf("copy of an empty data source: %s %s %v", typ, msg, out)
		}
		m, err := getObject(t, f.bucket, out["manifestKey"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if doc := decode[map[string]any](t, m); doc["verified"] != true || doc["entityCount"] != 0.0 || doc["expectedEntityCount"] != 0.0 {
			t.Errorf("manifest %s", m)
		}
	})
	t.Run("entities, total 0", func(t *testing.T) {
		f := newFixture(t, masterKey, nil)
		st := f.backupToCompleted()
		st["totalEntityCount"] = 0
		if _, typ, msg := f.invoke("copytos3", st); typ != "ArchiveUnverified" || !strings.Contains(msg, "the export has 350 entities, the job reported 0") {
			t.Fatalf("got %s: %s, want ArchiveUnverified", typ, msg)
		}
	})
	t.Run("no total", func(t *testing.T) {
		f := newFixture(t, transitKey, func(c *sdsemu.Config) {
			c.Faults = []sdsemu.Fault{{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultNoTotal, Times: -1}}
		})
		st := completed(f, transitAccessID, "EmptyPlaces")
		if total, ok := st["totalEntityCount"]; ok {
			t.Fatalf("checkstatus gives totalEntityCount %v for a job that gave none", total)
		}
		if _, typ, msg := f.invoke("copytos3", st); typ != "ArchiveUnverified" || !strings.Contains(msg, "no total") {
			t.Fatalf("got %s: %s, want ArchiveUnverified", typ, msg)
		}
	})
}

// TestConcurrentCopiesOneWinner: copytos3 delivered n times at once for
// one job (1 MB and 12 MB exports) downloads and stores the export once:
// exactly one copy reports a new archive, the others that archive with
// reused: true, and the versioned bucket holds one version of it.
func TestConcurrentCopiesOneWinner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		padding int // FourthCoffeeSample's 350 entities
	}{
		{"1 MB", 2800},
		{"12 MB", 34000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, masterKey, func(c *sdsemu.Config) {
				for i := range c.Accounts[0].DataSources {
					if c.Accounts[0].DataSources[i].Name == coffee {
						c.Accounts[0].DataSources[i].EntityPaddingBytes = tc.padding
					}
				}
			})
			ctx := context.Background()
			if _, err := s3Client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &f.bucket,
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
				t.Fatal(err)
			}
			st := f.backupToCompleted()
			downloads := f.downloads()
			const n = 4
			outs := make([]map[string]any, n)
			errTypes := make([]string, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var msg string
					if outs[i], errTypes[i], msg = f.invoke("copytos3", st); errTypes[i] != "" {
						t.Errorf("copy %d: %s %s", i, errTypes[i], msg)
					}
				}()
			}
			close(start)
			wg.Wait()
			fresh := 0
			for i, out := range outs {
				if out == nil {
					continue
				}
				if out["reused"] == false {
					fresh++
				}
				if out["key"] != outs[0]["key"] || out["sha256"] != outs[0]["sha256"] {
					t.Errorf("copy %d reports %v %v, copy 0 %v %v", i, out["key"], out["sha256"], outs[0]["key"], outs[0]["sha256"])
				}
			}
			vs, err := s3Client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &f.bucket})
			if err != nil {
				t.Fatal(err)
			}
			byKey := map[string]int{}
			for _, v := range vs.Versions {
				byKey[aws.ToString(v.Key)]++
			}
			key, _ := outs[0]["key"].(string)
			t.Logf("%d of %d concurrent copies won; %d downloads; %d versions of the archive, %d of its manifest",
				fresh, n, f.downloads()-downloads, byKey[key], byKey[key+".manifest.json"])
			if fresh != 1 || byKey[key] != 1 || byKey[key+".manifest.json"] != 1 || f.downloads()-downloads != 1 {
				t.Errorf("want exactly one winner, one download, one version of the archive and of its manifest")
			}
			if objects, uploads := objectCount(t, f.bucket); objects != 2 || uploads != 0 {
				t.Errorf("%d objects, %d uploads; want the archive and its manifest", objects, uploads)
			}
		})
	}
}
