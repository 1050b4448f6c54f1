package nightly_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clock is the simulated time shared by the emulator and the run.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	simAccount  = "Sim"
	accountKey  = "sim-account-key"
	masterKey   = "sim-master-key"
	queryKey    = "sim-query-key"
	simAccessID = "5157ac3e55000000000000000000a001"
	keyRef      = "secret:sds-default@v1"
	jobDuration = 10 * time.Minute
	// One data source has a master key of its own, which the default secret
	// does not hold; from keyFixNight an override secret does.
	lockedName   = "Sim007"
	lockedMaster = "sim-locked-master-key"
	lockedQuery  = "sim-locked-query-key"
	overrideRef  = "secret:sds-sim007@v1"
	keyFixNight  = 4
	pollEvery    = 5 * time.Minute
)

// Per night: data sources changed, data sources created, and jobs other
// people start on the account before the run.
var (
	simChanges = []int{0, 60, 0, 37, 60, 12, 25}
	simNew     = []int{0, 3, 0, 5, 1, 0, 2}
	simOthers  = []int{0, 0, 0, 2, 0, 0, 0}
	// The schedule does not fire at the same second every night: an early
	// start finds last night's jobs still in the 24 h window.
	simJitter = []time.Duration{0, -12 * time.Minute, 7 * time.Minute, -3 * time.Minute, -15 * time.Minute, 9 * time.Minute, -6 * time.Minute}
)

type simulation struct {
	t        *testing.T
	ctx      context.Context
	clk      *clock
	emu      *sdsemu.Server
	account  *sds.Client // discovery and job list, with a key of the account
	master   *sds.Client // downloads
	store    *catalog.Store
	s3       *s3.Client
	bucket   string
	rnd      *rand.Rand
	locked   *sds.Client // downloads of lockedName, from keyFixNight
	night    int
	names    []string // every data source, in creation order
	versions int
	// pending: data sources whose current state has no archive yet, with
	// the night it began and the night by which it must be archived.
	pending map[string]pendingEntry
	// needKey: data sources refused with 401 whose key has not changed.
	needKey map[string]bool
}

type pendingEntry struct{ since, due int }

func (s *simulation) newVersion(updated time.Time, entities int) sdsemu.Version {
	s.versions++
	return sdsemu.Version{JobID: fmt.Sprintf("%032x", s.versions), EntityCount: entities, Updated: updated}
}

func (s *simulation) newSource(name string, updated time.Time) sdsemu.DataSource {
	d := sdsemu.DataSource{
		AccessID: simAccessID, Name: name, EntityTypeName: "Places",
		MasterKey: masterKey, QueryKey: queryKey, IsPublic: len(name)%2 == 0,
		Published: s.newVersion(updated, 3+s.rnd.IntN(20)),
	}
	if name == lockedName {
		d.MasterKey, d.QueryKey = lockedMaster, lockedQuery
	}
	return d
}

// keyFor is the key source and client that serve a data source tonight.
func (s *simulation) keyFor(name string) (string, *sds.Client) {
	if name == lockedName && s.night >= keyFixNight {
		return overrideRef, s.locked
	}
	return keyRef, s.master
}

func newSimulation(t *testing.T, sources int, start time.Time) *simulation {
	s := &simulation{t: t, ctx: context.Background(), clk: &clock{t: start}, rnd: rand.New(rand.NewPCG(14, 200)), pending: map[string]pendingEntry{}, needKey: map[string]bool{}}
	s.s3 = testenv.S3(t)
	s.bucket = fmt.Sprintf("sim-%d", time.Now().UnixNano())
	if _, err := s.s3.CreateBucket(s.ctx, &s3.CreateBucketInput{Bucket: &s.bucket}); err != nil {
		t.Fatal(err)
	}
	s.store = catalog.New(s.s3, s.bucket, "", catalog.WithClock(s.clk.Now))
	acct := sdsemu.Account{Name: simAccount, Keys: []string{accountKey}}
	for i := range sources {
		name := fmt.Sprintf("Sim%03d", i)
		s.names = append(s.names, name)
		acct.DataSources = append(acct.DataSources, s.newSource(name, start.Add(-time.Duration(sources-i)*time.Hour)))
	}
	var hs *httptest.Server
	s.emu, hs = testenv.Emulator(t, sdsemu.Config{
		Accounts:            []sdsemu.Account{acct},
		MaxDataSources:      1000,
		DownloadJobDuration: jobDuration,
		JobDuration:         time.Minute,
		Now:                 s.clk.Now,
	})
	var err error
	// One attempt: a 429 must surface, not be waited out.
	once := sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1})
	if s.account, err = sds.New(hs.URL, accountKey, once); err != nil {
		t.Fatal(err)
	}
	if s.master, err = sds.New(hs.URL, masterKey, once); err != nil {
		t.Fatal(err)
	}
	if s.locked, err = sds.New(hs.URL, lockedMaster, once); err != nil {
		t.Fatal(err)
	}
	return s
}

// change publishes new versions of n data sources and creates m new ones,
// at times during the day before start.
func (s *simulation) change(n, m int, start time.Time) {
	for _, i := range s.rnd.Perm(len(s.names))[:n] {
		v := s.newVersion(start.Add(-time.Duration(1+s.rnd.IntN(20*60))*time.Minute), 3+s.rnd.IntN(20))
		if err := s.emu.PublishVersion(simAccessID, s.names[i], v); err != nil {
			s.t.Fatal(err)
		}
	}
	for range m {
		name := fmt.Sprintf("Sim%03d", len(s.names))
		s.names = append(s.names, name)
		if err := s.emu.AddDataSource(simAccount, s.newSource(name, start.Add(-time.Duration(1+s.rnd.IntN(20*60))*time.Minute))); err != nil {
			s.t.Fatal(err)
		}
	}
}

// discover lists the account's data sources and reads each one's published
// version, as the nightly run does.
func (s *simulation) discover() []nightly.Source {
	list, err := s.account.DataSources(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []nightly.Source
	for _, d := range list {
		infos, err := s.account.DataSourceInfo(s.ctx, sds.DataSource{AccessID: d.AccessID, Name: d.Name}, true)
		if err != nil {
			s.t.Fatal(err)
		}
		src, err := nightly.Published(infos)
		if err != nil {
			s.t.Fatal(err)
		}
		src.KeyRef, _ = s.keyFor(src.Name)
		out = append(out, src)
	}
	return out
}

// parallel runs f for each item, eight at a time.
func parallel[T any](items []T, f func(T) error) error {
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(it); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(slices.Collect(func(yield func(error) bool) {
		for e := range errs {
			if !yield(e) {
				return
			}
		}
	})...)
}

// archive runs the scheduled items: real download jobs through the client,
// at most plan.Concurrency at once, each no earlier than its slot; the
// export goes to S3 and the catalog records the verified archive.
func (s *simulation) archive(plan nightly.Plan, written map[string]catalog.Record) (archived, refused []nightly.Item, throttled int) {
	type flight struct {
		it  nightly.Item
		job *sds.Job
		c   *sds.Client
	}
	queue := plan.Scheduled
	var inflight []flight
	for len(queue) > 0 || len(inflight) > 0 {
		for len(inflight) < plan.Concurrency && len(queue) > 0 && !s.clk.Now().Before(queue[0].NotBefore) {
			it := queue[0]
			queue = queue[1:]
			_, c := s.keyFor(it.ID.Name)
			job, err := c.CreateDownloadJob(s.ctx, sds.DataSource{AccessID: it.ID.AccessID, Name: it.ID.Name}, it.Version)
			if errors.Is(err, sds.ErrThrottled) {
				throttled++
				queue = nil // the night ends cleanly; the rest waits
				break
			}
			if errors.Is(err, sds.ErrUnauthorized) {
				// Recorded once; not tried again until its key source changes.
				at := s.clk.Now()
				r, err := s.store.UpdateFrom(s.ctx, written[it.ID.Key()], func(r *catalog.Record) error {
					r.NeedsKey, r.KeyRef = true, it.KeyRef
					r.Failed("download: no configured master key opens the data source", at)
					return nil
				})
				if err != nil {
					s.t.Fatal(err)
				}
				written[r.ID().Key()] = r
				refused = append(refused, it)
				continue
			}
			if err != nil {
				s.t.Fatal(err)
			}
			at := s.clk.Now()
			r, err := s.store.UpdateFrom(s.ctx, written[it.ID.Key()], func(r *catalog.Record) error { r.StartJob(job.ID, at); return nil })
			if err != nil {
				s.t.Fatal(err)
			}
			written[r.ID().Key()] = r
			inflight = append(inflight, flight{it, job, c})
		}
		if len(inflight) == 0 {
			if len(queue) > 0 {
				s.clk.Set(queue[0].NotBefore)
			}
			continue
		}
		s.clk.Advance(pollEvery)
		inflight = slices.DeleteFunc(inflight, func(f flight) bool {
			job, err := f.c.DownloadJobStatus(s.ctx, f.job.StatusURL())
			if err != nil {
				s.t.Fatal(err)
			}
			if !job.Status.Done() {
				return false
			}
			if job.Status != sds.StatusCompleted {
				s.t.Fatalf("%s: %v", f.it.ID, job.Err())
			}
			exp, err := f.c.OpenExport(s.ctx, job)
			if err != nil {
				s.t.Fatal(err)
			}
			data, err := io.ReadAll(exp.Body)
			exp.Body.Close()
			if err != nil {
				s.t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			key := fmt.Sprintf("archives/%s/%s/%s.xml", f.it.ID.AccessID, f.it.ID.Name, f.it.Version)
			if _, err := s.s3.PutObject(s.ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: strings.NewReader(string(data))}); err != nil {
				s.t.Fatal(err)
			}
			at := s.clk.Now()
			r, err := s.store.UpdateFrom(s.ctx, written[f.it.ID.Key()], func(r *catalog.Record) error {
				r.EndJob(job.ID)
				r.Verified(catalog.Archive{Version: f.it.Version, At: at, ArchiveKey: key, SHA256: hex.EncodeToString(sum[:]), EntityCount: job.TotalEntityCount})
				return nil
			})
			if err != nil {
				s.t.Fatal(err)
			}
			written[r.ID().Key()] = r
			archived = append(archived, f.it)
			return true
		})
	}
	return archived, refused, throttled
}

// others starts n set-public jobs, as people using the account would.
func (s *simulation) others(n int) {
	for i := range n {
		if _, err := s.master.SetPublic(s.ctx, sds.DataSource{AccessID: simAccessID, Name: s.names[i]}, true); err != nil {
			s.t.Fatal(err)
		}
	}
}

// TestMultiNight runs an account of 200 data sources through several
// nights of changes and checks the SDS job accounting and the catalog after
// each.
func TestMultiNight(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	base := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)
	s := newSimulation(t, 200, base)
	lim, _ := nightly.Limits{}.WithDefaults()
	// plan: discovery over HTTP, catalog read from S3, plan; observe: a
	// record write per data source; archive: the download jobs and their
	// catalog writes.
	t.Logf("%-5s %5s %8s %9s %7s %8s %9s %8s %8s %8s", "night", "seen", "changed", "archived", "no key", "carried", "SDS jobs", "plan", "observe", "archive")
	for night := range simChanges {
		start := base.Add(time.Duration(night)*24*time.Hour + simJitter[night])
		s.clk.Set(start.Add(-time.Hour))
		s.change(simChanges[night], simNew[night], start)
		s.others(simOthers[night])
		s.clk.Set(start)
		s.night = night
		jobsBefore := len(s.emu.Jobs())

		t0 := time.Now()
		sources := s.discover()
		records, _, err := s.store.List(s.ctx)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := s.account.ListJobs(s.ctx)
		if err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		plan, err := nightly.Make(nightly.Input{Now: start, Sources: sources, Records: records, Jobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		written := map[string]catalog.Record{}
		byKey := map[string]catalog.Record{}
		for _, r := range records {
			byKey[r.ID().Key()] = r
		}
		if err := parallel(plan.Items, func(it nightly.Item) error {
			var r catalog.Record
			var err error
			if cur, ok := byKey[it.ID.Key()]; ok {
				r, err = s.store.UpdateFrom(s.ctx, cur, plan.Observe(it))
			} else {
				r, err = s.store.UpdateRecord(s.ctx, it.ID, plan.Observe(it))
			}
			mu.Lock()
			written[r.ID().Key()] = r
			mu.Unlock()
			return err
		}); err != nil {
			t.Fatal(err)
		}

		// The truth: what has no archive of its current version, and by
		// which night FIFO at the night's capacity must have archived it.
		var changed int
		for _, it := range plan.Items {
			if it.State == nightly.New || it.State == nightly.Changed {
				changed++
			}
		}
		backlog := 0
		for _, it := range plan.Items {
			if want := s.needKey[it.ID.Name] && it.KeyRef == keyRef; (it.State == nightly.NeedsKey) != want {
				t.Errorf("night %d: %s is %s, want needs-key: %v", night, it.ID.Name, it.State, want)
			}
			if it.State != nightly.NeedsKey {
				delete(s.needKey, it.ID.Name) // its key source changed
			}
			if it.State != nightly.New && it.State != nightly.Changed {
				if _, ok := s.pending[it.ID.Name]; ok {
					t.Errorf("night %d: %s is %s but was never archived", night, it.ID.Name, it.State)
				}
				continue
			}
			backlog++
			if _, ok := s.pending[it.ID.Name]; !ok {
				// ⌈backlog/budget⌉ nights, counting tonight, at the budget
				// left after other people's jobs.
				due, room := night, 0
				for ; room < changed; due++ {
					room += lim.Budget - simOthers[min(due, len(simOthers)-1)]
				}
				s.pending[it.ID.Name] = pendingEntry{since: night, due: due - 1}
			}
		}
		if want := min(changed, lim.Budget-simOthers[night]); len(plan.Scheduled) != want {
			t.Errorf("night %d: %d scheduled of %d changed, want %d", night, len(plan.Scheduled), changed, want)
		}

		t3 := time.Now()
		archived, refused, throttled := s.archive(plan, written)
		for _, it := range refused {
			s.needKey[it.ID.Name] = true
			delete(s.pending, it.ID.Name)
		}
		t4 := time.Now()
		if err := s.store.UpdateIndex(s.ctx, slices.Collect(maps.Values(written))...); err != nil {
			t.Fatal(err)
		}
		used := len(s.emu.Jobs()) - jobsBefore
		t.Logf("%-5d %5d %8d %9d %7d %8d %9d %8s %8s %8s", night, len(plan.Items), changed, len(archived), len(refused), len(plan.CarriedOver), used,
			t2.Sub(t0).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond), t4.Sub(t3).Round(time.Millisecond))

		if throttled > 0 {
			t.Errorf("night %d: %d download jobs refused by the job limits", night, throttled)
		}
		if used != len(archived) || len(archived)+len(refused) != len(plan.Scheduled) {
			t.Errorf("night %d: %d SDS jobs for %d archived and %d refused of %d scheduled", night, used, len(archived), len(refused), len(plan.Scheduled))
		}
		for _, it := range archived {
			p := s.pending[it.ID.Name]
			if night > p.due {
				t.Errorf("%s changed on night %d, archived on night %d, due by %d", it.ID.Name, p.since, night, p.due)
			}
			delete(s.pending, it.ID.Name)
		}
		for name, p := range s.pending {
			if night >= p.due {
				t.Errorf("%s changed on night %d is not archived by night %d", name, p.since, night)
			}
		}
		s.checkLimits(t, night, lim)
		s.checkCatalog(t, night, start, archived)
	}
	// The data source without a key was tried once, then not again until
	// its key source changed.
	var tries []string
	for _, r := range s.emu.Requests() {
		if r.Operation == sdsemu.OpCreateDownload && strings.HasSuffix(r.Path, "/"+lockedName) {
			tries = append(tries, fmt.Sprint(r.Status))
		}
	}
	if got := strings.Join(tries, ","); got != "401,201" {
		t.Errorf("download jobs asked for %s: %s, want 401 then 201", lockedName, got)
	}
}

// checkLimits replays every job the emulator ran: never more than the
// budget in any 24 h, nor more than the cap at once, and no 429.
func (s *simulation) checkLimits(t *testing.T, night int, lim nightly.Limits) {
	jobs := s.emu.Jobs()
	for _, j := range jobs {
		if j.Kind != sdsemu.JobDownload {
			continue // other people's jobs are not ours to hold back
		}
		inWindow, inProcess := 0, 0
		for _, k := range jobs {
			if !k.Created.After(j.Created) && j.Created.Sub(k.Created) < 24*time.Hour {
				inWindow++
			}
			if !k.Created.After(j.Created) && (k.Status == sdsemu.StatusPending || k.Completed.After(j.Created)) {
				inProcess++
			}
		}
		if inWindow > lim.Budget {
			t.Errorf("night %d: %d jobs in the 24 h up to %s, budget %d", night, inWindow, j.Created, lim.Budget)
		}
		if inProcess > lim.Concurrency {
			t.Errorf("night %d: %d jobs in process at %s, cap %d", night, inProcess, j.Created, lim.Concurrency)
		}
	}
	for _, r := range s.emu.Requests() {
		if r.Status == 429 {
			t.Errorf("night %d: HTTP 429 to %s %s", night, r.Method, r.Path)
		}
	}
}

// checkCatalog compares every record and the index with the emulator's
// state, and tonight's archives with their records.
func (s *simulation) checkCatalog(t *testing.T, night int, start time.Time, archived []nightly.Item) {
	recs, _, err := s.store.List(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(s.names) {
		t.Errorf("night %d: %d records for %d data sources", night, len(recs), len(s.names))
	}
	byName := map[string]catalog.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	for _, name := range s.names {
		d, _ := s.emu.DataSource(simAccessID, name)
		r, ok := byName[name]
		switch _, pending := s.pending[name]; {
		case !ok:
			t.Errorf("night %d: %s has no record", night, name)
		case s.needKey[name]:
			if !r.NeedsKey || r.KeyRef != keyRef || r.LastError == "" || r.VerifiedVersion != "" {
				t.Errorf("night %d: %s needs a key, its record says %+v", night, name, r)
			}
		case !r.LastSeen.Equal(start):
			t.Errorf("night %d: %s last seen %s", night, name, r.LastSeen)
		case pending && (r.VerifiedVersion == d.Published.JobID || r.PendingSince.IsZero()):
			t.Errorf("night %d: %s is pending but its record says %+v", night, name, r)
		case !pending && (r.VerifiedVersion != d.Published.JobID || !r.PendingSince.IsZero() || r.SHA256 == ""):
			t.Errorf("night %d: %s has version %s archived, record says %q", night, name, d.Published.JobID, r.VerifiedVersion)
		}
	}
	for _, it := range archived {
		r := byName[it.ID.Name]
		out, err := s.s3.GetObject(s.ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(r.ArchiveKey)})
		if err != nil {
			t.Errorf("night %d: %s: archive %s: %v", night, it.ID.Name, r.ArchiveKey, err)
			continue
		}
		h := sha256.New()
		io.Copy(h, out.Body)
		out.Body.Close()
		if hex.EncodeToString(h.Sum(nil)) != r.SHA256 || r.EntityCount < 3 {
			t.Errorf("night %d: %s: archive does not match its record (%d entities)", night, it.ID.Name, r.EntityCount)
		}
	}
	x, err := s.store.Index(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.DataSources) != len(recs) {
		t.Errorf("night %d: index lists %d of %d records", night, len(x.DataSources), len(recs))
	}
	for _, e := range x.DataSources {
		if r := byName[e.Name]; e.Revision != r.Revision || e.VerifiedVersion != r.VerifiedVersion {
			t.Errorf("night %d: index entry of %s at revision %d, record at %d", night, e.Name, e.Revision, r.Revision)
		}
	}
}
