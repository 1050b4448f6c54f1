package archive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/testenv"
)

// TestCopyFromEmulator archives real download jobs of the SDS emulator:
// create the job, poll it to Completed, open its output, copy.
func TestCopyFromEmulator(t *testing.T) {
	api := newS3(t)
	const (
		accessID  = "20181f26d9e94c81acdf9496133d4f23" // FourthCoffeeSample's (the default fixture)
		masterKey = "sdsemu-master-key-fourthcoffee"
	)
	cases := []struct {
		name    string
		ds      string
		access  string // access id and master key when not FourthCoffeeSample's
		key     string
		padding int // EntityPaddingBytes of FourthCoffeeSample
		fault   *sdsemu.Fault
		class   error
		// unverified: the archive is stored, unverified for this reason.
		unverified string
	}{
		{name: "published", ds: "FourthCoffeeSample"},
		{name: "multipart", ds: "FourthCoffeeSample", padding: 20_000},
		// An empty data source: a job total of 0 and an export of 0 entities agree.
		{name: "empty data source", ds: "EmptyPlaces", access: "6b1c9e2f04d84a7f9a3e5d7c8b2f1e40", key: "sdsemu-master-key-transit"},
		// A job that gives no total cannot vouch for the count.
		{name: "no total", ds: "FourthCoffeeSample", fault: &sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultNoTotal, Times: -1}, unverified: "the job reported no total"},
		{name: "truncated", ds: "FourthCoffeeSample", padding: 20_000, fault: &sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultTruncate, Bytes: 6 << 20}, class: ErrSource},
		{name: "reset", ds: "FourthCoffeeSample", padding: 20_000, fault: &sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultReset, Bytes: 6 << 20}, class: ErrSource},
		{name: "overlong", ds: "FourthCoffeeSample", padding: 20_000, fault: &sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultOverlong, Bytes: 6 << 20}, class: ErrIntegrity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sdsemu.DefaultConfig()
			cfg.DownloadJobDuration = 0
			for i := range cfg.Accounts[0].DataSources {
				if cfg.Accounts[0].DataSources[i].Name == "FourthCoffeeSample" {
					cfg.Accounts[0].DataSources[i].EntityPaddingBytes = tc.padding
				}
			}
			if tc.fault != nil {
				cfg.Faults = []sdsemu.Fault{*tc.fault}
			}
			_, srv := testenv.Emulator(t, cfg)

			access, key := accessID, masterKey
			if tc.access != "" {
				access, key = tc.access, tc.key
			}
			ctx := context.Background()
			client, err := sds.New(srv.URL, key, sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1}))
			if err != nil {
				t.Fatal(err)
			}
			job, err := client.CreateDownloadJob(ctx, sds.DataSource{AccessID: access, Name: tc.ds}, "")
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); job.Status != sds.StatusCompleted; {
				if time.Now().After(deadline) {
					t.Fatalf("job still %s", job.Status)
				}
				if job, err = client.DownloadJobStatus(ctx, job.StatusURL()); err != nil {
					t.Fatal(err)
				}
			}

			bucket := newBucket(t, api)
			store := newStore(t, api, bucket, Config{PartSize: partSize})
			expected := job.TotalEntityCount
			if !job.HasTotal {
				expected = dataset.NoTotal
			}
			req := Request{AccessID: access, DataSourceName: tc.ds, JobID: job.ID,
				JobCreated: *job.CreatedDate, ExpectedEntities: expected, StartedAt: time.Now()}
			res, err := store.Copy(ctx, req, sdsOpener(func(ctx context.Context) (*sds.Export, error) {
				return client.OpenExport(ctx, job)
			}))
			if tc.class != nil {
				if !errors.Is(err, tc.class) {
					t.Fatalf("err %v, want %v", err, tc.class)
				}
				assertNothingStored(t, api, bucket)
				return
			}
			if tc.unverified != "" {
				if !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), tc.unverified) || res.Verified {
					t.Fatalf("err %v (verified %v), want unverified: %s", err, res.Verified, tc.unverified)
				}
			} else if err != nil || !res.Verified {
				t.Fatalf("err %v, verified %v", err, res.Verified)
			}
			if res.EntityCount != job.TotalEntityCount && job.HasTotal {
				t.Errorf("%d entities archived, job says %d", res.EntityCount, job.TotalEntityCount)
			}
			if sum, size := getObject(t, api, bucket, res.Key); sum != res.SHA256 || size != res.Bytes {
				t.Errorf("object sha256 %s, %d bytes; Result %s, %d", sum, size, res.SHA256, res.Bytes)
			}
			if m := readManifest(t, api, bucket, res.ManifestKey); m.SHA256 != res.SHA256 || m.EntityCount != res.EntityCount || m.Verified != res.Verified {
				t.Errorf("manifest %+v disagrees with %+v", m, res)
			}
			t.Logf("%s: %d entities, %d bytes", res.Key, res.EntityCount, res.Bytes)
		})
	}
}
