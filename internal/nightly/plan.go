package nightly

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/sds"
)

// sdsMaxJobDuration is how long an SDS job can take ("up to 12 hours"). A
// download job sdsops started and never saw end counts as in process until
// then.
const sdsMaxJobDuration = 12 * time.Hour

// slotMargin keeps a job from starting at the exact instant an older one
// leaves the 24 h window, whose edge SDS does not document.
const slotMargin = time.Minute

// Source is a data source as discovery found it, with its published version.
type Source struct {
	AccessID string
	Name     string
	Version  string    // job id of the published version
	Updated  time.Time // when that version was published; zero if unknown
	IsPublic bool
	// KeyRef names the key source that would open the data source (a secret
	// and its version, never the key): a data source that needs a key is
	// tried again when it changes.
	KeyRef string
}

// ID is the source's catalog identity.
func (s Source) ID() catalog.ID { return catalog.ID{AccessID: s.AccessID, Name: s.Name} }

// Published picks the published version out of the answer to data source
// information with showAllVersions.
func Published(infos []sds.DataSourceInfo) (Source, error) {
	for _, in := range infos {
		if !in.IsActive || in.IsStaging {
			continue
		}
		if in.JobID == "" {
			return Source{}, fmt.Errorf("nightly: %s/%s: the published version has no job id (ask with showAllVersions)", in.AccessID, in.Name)
		}
		if err := sds.ValidateJobID(in.JobID); err != nil {
			return Source{}, fmt.Errorf("nightly: %s/%s: %w", in.AccessID, in.Name, err)
		}
		s := Source{AccessID: in.AccessID, Name: in.Name, Version: in.JobID, IsPublic: in.IsPublic}
		if in.Updated != nil {
			s.Updated = in.Updated.UTC()
		}
		return s, nil
	}
	return Source{}, errors.New("nightly: no published version in the data source information")
}

// Filter is the optional include/exclude list. A pattern is a data source
// name or accessId/name, with path.Match wildcards, compared without regard
// to case. An empty Include admits every data source; Exclude wins.
type Filter struct {
	Include []string
	Exclude []string
}

// Validate reports malformed patterns.
func (f Filter) Validate() error {
	for _, p := range slices.Concat(f.Include, f.Exclude) {
		if _, err := path.Match(strings.ToLower(p), ""); err != nil || strings.TrimSpace(p) == "" || strings.Count(p, "/") > 1 {
			return fmt.Errorf("nightly: filter pattern %q: want name or accessId/name, with * ? [..] wildcards", p)
		}
	}
	return nil
}

// Match reports whether the filter admits id.
func (f Filter) Match(id catalog.ID) bool {
	if len(f.Include) > 0 && !matchAny(f.Include, id) {
		return false
	}
	return !matchAny(f.Exclude, id)
}

func matchAny(patterns []string, id catalog.ID) bool {
	full := strings.ToLower(id.AccessID + "/" + id.Name)
	name := strings.ToLower(id.Name)
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		subject := name
		if strings.Contains(p, "/") {
			subject = full
		}
		if ok, _ := path.Match(p, subject); ok {
			return true
		}
	}
	return false
}

// State is what tonight's plan makes of a data source.
type State string

// States of Item.
const (
	UpToDate State = "up-to-date" // the published version has a verified archive
	New      State = "new"        // never archived
	Changed  State = "changed"    // archived, but not its published version
	NeedsKey State = "needs-key"  // no key opened it, and the key source has not changed
	Excluded State = "excluded"   // left out by the filter
)

// CarryCause is why a plan carries data sources over to a later night.
// The candidates are taken in order and the first that cannot start
// carries the rest with it, so one cause holds for all of a night's.
type CarryCause string

// Causes of Plan.Carry.
const (
	CarryNone CarryCause = ""
	// CarryConcurrency: the account's jobs in process filled the cap.
	CarryConcurrency CarryCause = "concurrency"
	// CarryBudget: the budget's jobs of any 24 hours are all taken, by the
	// jobs of the 24 hours before the run and those scheduled tonight.
	CarryBudget CarryCause = "budget"
	// CarryHorizon: the budget has room only once older jobs leave the
	// 24-hour window, later than a run waits (Limits.Horizon).
	CarryHorizon CarryCause = "horizon"
)

// Item is one discovered data source in the plan.
type Item struct {
	ID      catalog.ID
	Version string
	State   State
	Public  bool
	KeyRef  string // the source's, to record with a 401
	// Since is when the data source's unarchived state began (zero when up
	// to date); Staleness is how long ago that is.
	Since     time.Time
	Staleness time.Duration
	// NotBefore is, for a scheduled item, the earliest start that keeps the
	// account within the budget.
	NotBefore time.Time
}

// Input is what the plan is made from.
type Input struct {
	Now     time.Time
	Sources []Source         // every data source discovered tonight
	Records []catalog.Record // the catalog
	Jobs    []sds.Job        // the account's job list (download jobs are not in it)
	Filter  Filter
	Limits  Limits
}

// Plan is tonight's decision.
type Plan struct {
	Now    time.Time
	Limits Limits
	// Items lists every discovered data source, by access id and name.
	Items []Item
	// Scheduled are backed up tonight, in this order; CarriedOver wait for
	// a later night, in the order they will be taken.
	Scheduled   []Item
	CarriedOver []Item
	// Counted against the limits when the plan was made: jobs started in
	// the last 24 h (all, and sdsops's own download jobs), and jobs in
	// process.
	JobsInWindow    int
	OwnJobsInWindow int
	InProcess       int
	// Concurrency is how many of the scheduled jobs may run at once.
	Concurrency int
	// Carry is why CarriedOver are not started tonight (CarryNone when
	// none are); BudgetFreesAt, with CarryHorizon, is when the budget
	// would have room for the first of them.
	Carry         CarryCause
	BudgetFreesAt time.Time
	// PastRPO counts data sources (excluded ones aside) whose current
	// version has had no verified archive for longer than Limits.RPO.
	PastRPO      int
	MaxStaleness time.Duration
	// Vanished are catalog records whose data source was not discovered.
	Vanished []catalog.ID
}

// Make plans tonight's backups.
func Make(in Input) (Plan, error) {
	lim, err := in.Limits.WithDefaults()
	if err != nil {
		return Plan{}, err
	}
	if err := in.Filter.Validate(); err != nil {
		return Plan{}, err
	}
	if in.Now.IsZero() {
		return Plan{}, errors.New("nightly: no time given")
	}
	now := in.Now.UTC()
	p := Plan{Now: now, Limits: lim}

	records := make(map[string]*catalog.Record, len(in.Records))
	for i := range in.Records {
		records[in.Records[i].ID().Key()] = &in.Records[i]
	}
	seen := make(map[string]bool, len(in.Sources))
	for _, s := range in.Sources {
		k := s.ID().Key()
		if seen[k] {
			return Plan{}, fmt.Errorf("nightly: data source %s discovered twice", s.ID())
		}
		seen[k] = true
		it := assess(s, records[k], in.Filter, now)
		p.Items = append(p.Items, it)
		if it.State != Excluded && it.State != UpToDate && it.Staleness > lim.RPO {
			p.PastRPO++
		}
		if it.State != Excluded {
			p.MaxStaleness = max(p.MaxStaleness, it.Staleness)
		}
	}
	slices.SortFunc(p.Items, func(a, b Item) int { return strings.Compare(a.ID.Key(), b.ID.Key()) })
	for _, r := range in.Records {
		if !seen[r.ID().Key()] {
			p.Vanished = append(p.Vanished, r.ID())
		}
	}

	u := Used(now, in.Jobs, in.Records)
	window := u.Window
	p.JobsInWindow, p.OwnJobsInWindow, p.InProcess = len(window), u.OwnJobsInWindow, u.InProcess
	p.Concurrency = max(0, lim.Concurrency-p.InProcess)

	// Candidates, longest-unarchived first.
	var todo []Item
	for _, it := range p.Items {
		if it.State == New || it.State == Changed {
			todo = append(todo, it)
		}
	}
	slices.SortFunc(todo, func(a, b Item) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.ID.Key(), b.ID.Key()))
	})

	// The i-th job tonight may start once at most Budget-1 others remain in
	// the 24 h window: immediately while the window has room, else when
	// enough older jobs have left it.
	for i, it := range todo {
		if p.Concurrency == 0 {
			p.CarriedOver, p.Carry = todo[i:], CarryConcurrency
			break
		}
		start, ok := slot(window, i, lim.Budget, now)
		if !ok {
			p.CarriedOver, p.Carry = todo[i:], CarryBudget
			break
		}
		if start.Sub(now) > lim.Horizon {
			p.CarriedOver, p.Carry, p.BudgetFreesAt = todo[i:], CarryHorizon, start
			break
		}
		it.NotBefore = start
		p.Scheduled = append(p.Scheduled, it)
	}
	return p, nil
}

// Usage is what the account has used of its job limits at a time.
type Usage struct {
	// Window holds the creation times of the jobs started in the last 24 h
	// (the account's listed jobs, and sdsops's own download jobs from the
	// catalog, which SDS does not list), sorted.
	Window          []time.Time
	OwnJobsInWindow int
	InProcess       int // jobs not finished yet
}

// Used counts what the account has used at now: the one count the nightly
// run and the restore drills both take their budget from.
func Used(now time.Time, jobs []sds.Job, records []catalog.Record) Usage {
	now = now.UTC()
	var u Usage
	for _, j := range jobs {
		created := now // a job without a date counts as long as possible
		if j.CreatedDate != nil {
			created = j.CreatedDate.UTC()
		}
		if now.Sub(created) < SDSWindow {
			u.Window = append(u.Window, created)
		}
		if !j.Status.Done() {
			u.InProcess++
		}
	}
	for _, r := range records {
		for _, j := range r.Jobs {
			age := now.Sub(j.Created)
			if age < SDSWindow {
				u.Window = append(u.Window, j.Created.UTC())
				u.OwnJobsInWindow++
			}
			if !j.Done && age < sdsMaxJobDuration {
				u.InProcess++
			}
		}
	}
	slices.SortFunc(u.Window, time.Time.Compare)
	return u
}

// slot is when the i-th (from 0) job of tonight may start, given the
// creation times of the jobs in the window (sorted).
func slot(window []time.Time, i, budget int, now time.Time) (time.Time, bool) {
	if i >= budget {
		return time.Time{}, false
	}
	over := len(window) + i - budget // older jobs that must leave first, minus one
	if over < 0 {
		return now, true
	}
	return later(now, window[over].Add(SDSWindow+slotMargin)), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// assess classifies one discovered data source against its record.
func assess(s Source, r *catalog.Record, f Filter, now time.Time) Item {
	it := Item{ID: s.ID(), Version: s.Version, Public: s.IsPublic, KeyRef: s.KeyRef}
	switch {
	case r != nil && r.VerifiedVersion != "" && strings.EqualFold(r.VerifiedVersion, s.Version):
		it.State = UpToDate
		return it
	case r != nil && r.NeedsKey && r.KeyRef == s.KeyRef:
		it.State = NeedsKey
	case r != nil && r.VerifiedVersion != "":
		it.State = Changed
	default:
		it.State = New
	}
	if !f.Match(it.ID) {
		it.State = Excluded
	}
	it.Since = since(s, r, now)
	it.Staleness = now.Sub(it.Since)
	return it
}

// since is when the unarchived state began: the earlier of the record's
// pending mark and the published version's date, or when sdsops first saw
// the data source, or now.
func since(s Source, r *catalog.Record, now time.Time) time.Time {
	var t time.Time
	pick := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	if r != nil {
		pick(r.PendingSince)
	}
	pick(s.Updated)
	if t.IsZero() && r != nil {
		pick(r.FirstSeen)
	}
	if t.IsZero() || t.After(now) {
		return now
	}
	return t.UTC()
}

// Observe returns a catalog mutation that records what discovery saw of
// it tonight: last seen, visibility, and when its unarchived state began.
func (p *Plan) Observe(it Item) func(*catalog.Record) error {
	return func(r *catalog.Record) error {
		r.LastSeen = p.Now
		if it.Public {
			r.Visibility = catalog.Public
		} else {
			r.Visibility = catalog.Private
		}
		switch {
		case it.State == UpToDate:
			// Its published version has a verified archive: a pending mark
			// left by a backup that failed since (a manual one, a delete's)
			// would keep it pending, and reported carried over, for ever.
			r.PendingSince = time.Time{}
		case r.PendingSince.IsZero() && !it.Since.IsZero():
			r.PendingSince = it.Since
		}
		return nil
	}
}
