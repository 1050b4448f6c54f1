package archive

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/s3err"
)

// TestNext: the decision of a copy that has looked at the bucket. Only a
// copy that finds neither an archive nor a live claim goes on to copy; a
// copy that finds the archive answers with it (reused).
func TestNext(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	live := &claimRecord{Owner: "a", ExpiresAt: now.Add(time.Second)}
	lapsed := &claimRecord{Owner: "a", ExpiresAt: now.Add(-time.Second)}
	unreadable := &claimRecord{} // a claim that does not parse
	tests := []struct {
		name     string
		archived bool
		claim    *claimRecord
		want     step
	}{
		{"archive complete, no claim", true, nil, stepReuse},
		{"archive complete, claim still there", true, live, stepReuse},
		{"archive complete, claim lapsed", true, lapsed, stepReuse},
		{"nothing yet", false, nil, stepClaim},
		{"another copy at work", false, live, stepWait},
		{"its claim expires this instant", false, &claimRecord{ExpiresAt: now}, stepWait},
		{"its copy crashed", false, lapsed, stepTakeOver},
		{"unreadable claim", false, unreadable, stepTakeOver},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := next(tt.archived, tt.claim, now); got != tt.want {
				t.Errorf("next = %d, want %d", got, tt.want)
			}
		})
	}
}

func putClaimObject(t *testing.T, api *s3.Client, bucket string, rec claimRecord) {
	t.Helper()
	b, _ := json.Marshal(rec)
	if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: ptr(wantKey + ClaimSuffix), Body: strings.NewReader(string(b))}); err != nil {
		t.Fatal(err)
	}
}

// TestCopyTakesOverLapsedClaim: the claim of a copy that crashed does not
// block the job: once it has lapsed, the next copy takes it over at once,
// archives, and removes the claim.
func TestCopyTakesOverLapsedClaim(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	src := newTestSource(t, data, serveOK)
	store := newStore(t, api, bucket, Config{})
	putClaimObject(t, api, bucket, claimRecord{Owner: "crashed", ExpiresAt: fixedNow.Add(-time.Second)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := store.Copy(ctx, testRequest(int64(data.Entities)), src.open())
	if err != nil || res.Reused || src.calls.Load() != 1 {
		t.Fatalf("err %v, reused %v, %d downloads: want a fresh copy", err, res.Reused, src.calls.Load())
	}
	if exists(t, api, bucket, wantKey+ClaimSuffix) {
		t.Error("the claim was left behind")
	}
}

// TestCopyWaitsForLiveClaim: while another copy holds the job, a copy
// neither downloads nor writes; it waits, at most until its context ends,
// and fails then with a storage error (retried by the state machine).
func TestCopyWaitsForLiveClaim(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	src := newTestSource(t, data, serveOK)
	store := newStore(t, api, bucket, Config{})
	putClaimObject(t, api, bucket, claimRecord{Owner: "busy", ExpiresAt: fixedNow.Add(time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := store.Copy(ctx, testRequest(int64(data.Entities)), src.open())
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), "another copy of this job") {
		t.Fatalf("err %v, want ErrStorage naming the other copy", err)
	}
	if src.calls.Load() != 0 || exists(t, api, bucket, wantKey) {
		t.Errorf("%d downloads; a waiting copy must not download or store", src.calls.Load())
	}
}

// TestCopyFailedHolderHandsOver: when the copy holding the job fails, it
// releases its claim at once and one waiting copy archives the export.
func TestCopyFailedHolderHandsOver(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: smallEntities}
	src := newTestSource(t, data, serveOK)
	store := newStore(t, api, bucket, Config{})
	var opens atomic.Int32
	open := func(ctx context.Context) (Export, error) {
		if opens.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond) // the others are waiting by now
			return Export{}, errors.New("SDS is down")
		}
		return src.open()(ctx)
	}
	const n = 3
	var wg sync.WaitGroup
	errs := make([]error, n)
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			results[i], errs[i] = store.Copy(ctx, testRequest(int64(data.Entities)), open)
		}()
	}
	wg.Wait()
	failed, fresh, reused := 0, 0, 0
	for i := range n {
		switch {
		case errors.Is(errs[i], ErrSource):
			failed++
		case errs[i] != nil:
			t.Errorf("copy %d: %v", i, errs[i])
		case results[i].Reused:
			reused++
		default:
			fresh++
		}
	}
	if failed != 1 || fresh != 1 || reused != n-2 || opens.Load() != 2 {
		t.Errorf("%d failed, %d fresh, %d reused after %d opens; want 1, 1, %d after 2", failed, fresh, reused, opens.Load(), n-2)
	}
}

// gatedBody yields half of an export, then waits for its gate before the
// rest; like a real download, it stops when its context ends.
type gatedBody struct {
	ctx  context.Context
	r    io.Reader
	half int64
	n    int64
	gate chan struct{}
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if g.n >= g.half {
		select {
		case <-g.gate:
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	} else if rest := g.half - g.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

func (g *gatedBody) Close() error { return nil }

// TestCopyStopsWhenClaimTakenOver: a copy that cannot renew its claim
// because another copy took it over stops, aborts its upload and stores
// nothing: only one copy ever completes an archive.
func TestCopyStopsWhenClaimTakenOver(t *testing.T) {
	api := newS3(t)
	bucket := newBucket(t, api)
	data := testDataSet{Name: "MyDataSourceName", Entities: largeEntities, Padding: largePadding}
	store := newStore(t, api, bucket, Config{PartSize: partSize, ClaimLease: 600 * time.Millisecond})
	pr, pw := io.Pipe()
	go func() { data.WriteTo(pw); pw.Close() }()
	body := &gatedBody{r: pr, half: data.Size() / 2, gate: make(chan struct{})}
	defer close(body.gate)
	go func() {
		// Once the copy is under way, another copy takes the claim over.
		time.Sleep(300 * time.Millisecond)
		putClaimObject(t, api, bucket, claimRecord{Owner: "other", ExpiresAt: fixedNow.Add(time.Minute)})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := store.Copy(ctx, testRequest(int64(data.Entities)), func(ctx context.Context) (Export, error) {
		body.ctx = ctx
		return Export{Body: body, Length: data.Size()}, nil
	})
	if !errors.Is(err, ErrStorage) || !errors.Is(err, errClaimLost) {
		t.Fatalf("err %v, want ErrStorage: claim lost", err)
	}
	if exists(t, api, bucket, wantKey) || exists(t, api, bucket, wantKey+".manifest.json") {
		t.Error("the copy that lost its claim stored its archive")
	}
	assertNoUploads(t, api, bucket)
	if !exists(t, api, bucket, wantKey+ClaimSuffix) {
		t.Error("the copy that lost its claim deleted the other copy's claim")
	}
}

// exists tells whether key is in the bucket.
func exists(t *testing.T, api *s3.Client, bucket, key string) bool {
	t.Helper()
	_, err := api.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if s3err.NotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("head %s: %v", key, err)
	}
	return true
}
