package nightly

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/sds"
)

var now = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)

const acc = "a1b2c3d4"

func ver(i int) string { return fmt.Sprintf("%032x", i) }

// src is data source n, published version v, published age ago.
func src(n, v int, age time.Duration) Source {
	return Source{AccessID: acc, Name: fmt.Sprintf("DS%03d", n), Version: ver(v), Updated: now.Add(-age), KeyRef: "default@1"}
}

// archived is a record of data source n whose version v was verified.
func archived(n, v int) catalog.Record {
	return catalog.Record{Schema: 1, AccessID: acc, Name: fmt.Sprintf("DS%03d", n), VerifiedVersion: ver(v), VerifiedAt: now.Add(-72 * time.Hour), FirstSeen: now.Add(-100 * time.Hour)}
}

func listed(age time.Duration, status sds.Status) sds.Job {
	c := now.Add(-age)
	return sds.Job{ID: "x", Description: "DataSourceAccess", Status: status, CreatedDate: &c}
}

func names(items []Item) string {
	var s []string
	for _, it := range items {
		s = append(s, it.ID.Name)
	}
	return strings.Join(s, ",")
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		in   Limits
		want Limits
		err  bool
	}{
		{Limits{}, Limits{40, 5, 48 * time.Hour, 6 * time.Hour}, false},
		{Limits{Budget: 50, Concurrency: 10}, Limits{50, 10, 48 * time.Hour, 6 * time.Hour}, false},
		{Limits{Budget: 51}, Limits{}, true},
		{Limits{Concurrency: 11}, Limits{}, true},
		{Limits{Budget: -1}, Limits{}, true},
		{Limits{RPO: time.Minute}, Limits{}, true},
		{Limits{Horizon: 25 * time.Hour}, Limits{}, true},
	} {
		got, err := tc.in.WithDefaults()
		if (err != nil) != tc.err || !tc.err && got != tc.want {
			t.Errorf("%+v: got %+v, %v", tc.in, got, err)
		}
	}
}

func TestFilter(t *testing.T) {
	id := catalog.ID{AccessID: "A1B2", Name: "FourthCoffeeSample"}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Include: []string{"fourthcoffeesample"}}, true},
		{Filter{Include: []string{"a1b2/Fourth*"}}, true},
		{Filter{Include: []string{"zz99/*"}}, false},
		{Filter{Include: []string{"Transit"}}, false},
		{Filter{Exclude: []string{"*Sample"}}, false},
		{Filter{Include: []string{"*"}, Exclude: []string{"a1b2/*"}}, false},
	} {
		if err := tc.f.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := tc.f.Match(id); got != tc.want {
			t.Errorf("%+v: %v", tc.f, got)
		}
	}
	for _, bad := range []string{"[", "", "a/b/c"} {
		if err := (Filter{Exclude: []string{bad}}).Validate(); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

func TestPublished(t *testing.T) {
	up := now.Add(-time.Hour)
	infos := []sds.DataSourceInfo{
		{AccessID: acc, Name: "X", JobID: ver(9), IsStaging: true, IsActive: false},
		{AccessID: acc, Name: "X", JobID: ver(8), IsActive: true, IsPublic: true, Updated: &up},
		{AccessID: acc, Name: "X", JobID: ver(7), IsActive: false},
	}
	s, err := Published(infos)
	if err != nil || s.Version != ver(8) || !s.Updated.Equal(up) || !s.IsPublic {
		t.Fatalf("%+v, %v", s, err)
	}
	if _, err := Published([]sds.DataSourceInfo{{Name: "X", IsActive: true}}); err == nil {
		t.Error("a version without job id was accepted")
	}
	if _, err := Published(infos[:1]); err == nil {
		t.Error("a staged version was taken for the published one")
	}
}

func TestMake(t *testing.T) {
	h := time.Hour
	many := func(n int) []Source {
		var out []Source
		for i := range n { // DS000 changed longest ago
			out = append(out, src(i, 1, time.Duration(100-i)*h))
		}
		return out
	}
	needKey := archived(1, 1)
	needKey.NeedsKey, needKey.KeyRef = true, "default@1"
	pending := archived(2, 1)
	pending.PendingSince = now.Add(-60 * h)
	ownJobs := func(n int, age time.Duration, done bool) catalog.Record {
		r := archived(99, 1)
		for i := range n {
			r.Jobs = append(r.Jobs, catalog.Job{ID: fmt.Sprint(i), Created: now.Add(-age + time.Duration(i)*time.Minute), Done: done})
		}
		return r
	}
	others := func(n int, age time.Duration, st sds.Status) []sds.Job {
		var out []sds.Job
		for range n {
			out = append(out, listed(age, st))
		}
		return out
	}

	for _, tc := range []struct {
		name      string
		in        Input
		scheduled string // names in order; "" none
		count     int    // instead of names, when > 0
		carried   int
		carry     CarryCause // why they are carried over
		check     func(t *testing.T, p Plan)
	}{
		{
			name:    "unchanged data sources cost nothing",
			in:      Input{Sources: []Source{src(0, 1, 10*h), src(1, 1, 10*h)}, Records: []catalog.Record{archived(0, 1), archived(1, 1)}},
			carried: 0,
			check: func(t *testing.T, p Plan) {
				if p.PastRPO != 0 || p.MaxStaleness != 0 || p.Concurrency != 5 {
					t.Errorf("past RPO %d, staleness %s, concurrency %d", p.PastRPO, p.MaxStaleness, p.Concurrency)
				}
			},
		},
		{
			name: "new and changed, longest-unarchived first",
			in: Input{
				Sources: []Source{src(0, 2, 5*h), src(1, 1, 30*h), src(2, 2, 1*h), src(3, 1, 2*h), src(4, 7, 3*h)},
				Records: []catalog.Record{archived(0, 1), archived(3, 1), pending},
			},
			// DS002 pending for 60 h, DS001 new for 30 h, DS000 changed 5 h ago, DS004 new for 3 h.
			scheduled: "DS002,DS001,DS000,DS004",
			check: func(t *testing.T, p Plan) {
				if p.PastRPO != 1 || p.MaxStaleness != 60*h {
					t.Errorf("past RPO %d, max staleness %s", p.PastRPO, p.MaxStaleness)
				}
				for _, it := range p.Scheduled {
					if !it.NotBefore.Equal(now) {
						t.Errorf("%s waits until %s with the budget free", it.ID, it.NotBefore)
					}
				}
				want := map[string]State{"DS000": Changed, "DS001": New, "DS002": Changed, "DS003": UpToDate, "DS004": New}
				for _, it := range p.Items {
					if it.State != want[it.ID.Name] {
						t.Errorf("%s is %s, want %s", it.ID.Name, it.State, want[it.ID.Name])
					}
				}
			},
		},
		{
			name:    "over the budget the most recent changes wait",
			carry:   CarryBudget,
			in:      Input{Sources: many(45)},
			count:   40,
			carried: 5,
			check: func(t *testing.T, p Plan) {
				if p.Scheduled[0].ID.Name != "DS000" || p.CarriedOver[0].ID.Name != "DS040" {
					t.Errorf("order: %s ... carried %s", p.Scheduled[0].ID.Name, names(p.CarriedOver))
				}
			},
		},
		{
			name:    "other people's jobs count",
			carry:   CarryHorizon, // they leave the window 21 h from now
			in:      Input{Sources: many(45), Jobs: others(10, 3*h, sds.StatusCompleted)},
			count:   30,
			carried: 15,
		},
		{
			name:    "jobs older than 24 h do not count",
			carry:   CarryBudget,
			in:      Input{Sources: many(45), Jobs: others(10, 25*h, sds.StatusCompleted)},
			count:   40,
			carried: 5,
		},
		{
			name:  "own download jobs of last night free up as they leave the window",
			carry: CarryBudget,
			in:    Input{Sources: many(45), Records: []catalog.Record{ownJobs(40, 23*h, true)}},
			// Last night's jobs started 23 h ago, one a minute: tonight's
			// start one by one from 1 h 1 min from now.
			count:   40,
			carried: 5,
			check: func(t *testing.T, p Plan) {
				if p.OwnJobsInWindow != 40 || p.JobsInWindow != 40 {
					t.Errorf("own %d, all %d", p.OwnJobsInWindow, p.JobsInWindow)
				}
				for i, it := range p.Scheduled {
					want := now.Add(h + time.Minute + time.Duration(i)*time.Minute)
					if !it.NotBefore.Equal(want) {
						t.Errorf("job %d not before %s, want %s", i, it.NotBefore.Format(time.TimeOnly), want.Format(time.TimeOnly))
					}
				}
			},
		},
		{
			name:    "a wait beyond the horizon is carried over",
			carry:   CarryHorizon,
			in:      Input{Sources: many(5), Records: []catalog.Record{ownJobs(40, 20*h, true)}, Limits: Limits{Horizon: 2 * h}},
			count:   0,
			carried: 5,
			check: func(t *testing.T, p Plan) {
				// The oldest of the 40 leaves the window 4 h from now.
				if want := now.Add(4*h + time.Minute); !p.BudgetFreesAt.Equal(want) {
					t.Errorf("budget frees at %s, want %s", p.BudgetFreesAt, want)
				}
			},
		},
		{
			name:  "in-process jobs take concurrency",
			in:    Input{Sources: many(3), Jobs: others(2, h, sds.StatusPending), Records: []catalog.Record{ownJobs(1, h, false)}},
			count: 3,
			check: func(t *testing.T, p Plan) {
				if p.InProcess != 3 || p.Concurrency != 2 {
					t.Errorf("in process %d, concurrency %d", p.InProcess, p.Concurrency)
				}
			},
		},
		{
			name:    "an account at its cap starts nothing",
			carry:   CarryConcurrency,
			in:      Input{Sources: many(3), Jobs: others(5, h, sds.StatusPending)},
			count:   0,
			carried: 3,
		},
		{
			name: "needs-key waits for its key to change",
			in: Input{
				Sources: []Source{src(1, 2, 80*h), func() Source { s := src(5, 1, h); s.KeyRef = "default@2"; return s }()},
				Records: []catalog.Record{needKey, func() catalog.Record { r := archived(5, 0); r.NeedsKey, r.KeyRef = true, "default@1"; return r }()},
			},
			scheduled: "DS005",
			check: func(t *testing.T, p Plan) {
				if p.Items[0].State != NeedsKey || p.PastRPO != 1 {
					t.Errorf("%+v, past RPO %d", p.Items[0], p.PastRPO)
				}
			},
		},
		{
			name:      "excluded ones are neither scheduled nor alarmed on",
			in:        Input{Sources: []Source{src(0, 1, 90*h), src(1, 1, 90*h)}, Filter: Filter{Exclude: []string{"DS000"}}},
			scheduled: "DS001",
			check: func(t *testing.T, p Plan) {
				if p.Items[0].State != Excluded || p.PastRPO != 1 {
					t.Errorf("%+v, past RPO %d", p.Items[0], p.PastRPO)
				}
			},
		},
		{
			name:      "a vanished data source is reported",
			in:        Input{Sources: []Source{src(0, 1, h)}, Records: []catalog.Record{archived(0, 1), archived(7, 1)}},
			scheduled: "",
			check: func(t *testing.T, p Plan) {
				if len(p.Vanished) != 1 || p.Vanished[0].Name != "DS007" {
					t.Errorf("vanished %v", p.Vanished)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			p, err := Make(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if tc.count > 0 {
				if len(p.Scheduled) != tc.count {
					t.Errorf("scheduled %d: %s", len(p.Scheduled), names(p.Scheduled))
				}
			} else if got := names(p.Scheduled); got != tc.scheduled {
				t.Errorf("scheduled %q, want %q", got, tc.scheduled)
			}
			if len(p.CarriedOver) != tc.carried {
				t.Errorf("carried over %d: %s", len(p.CarriedOver), names(p.CarriedOver))
			}
			if p.Carry != tc.carry || (p.Carry == CarryHorizon) != !p.BudgetFreesAt.IsZero() {
				t.Errorf("carried over because %q (budget frees at %s), want %q", p.Carry, p.BudgetFreesAt, tc.carry)
			}
			if len(p.Scheduled) > p.Limits.Budget {
				t.Errorf("%d scheduled over a budget of %d", len(p.Scheduled), p.Limits.Budget)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestMakeRefusesBadInput(t *testing.T) {
	for name, in := range map[string]Input{
		"no time":     {Sources: []Source{src(0, 1, 0)}},
		"twice":       {Now: now, Sources: []Source{src(0, 1, 0), src(0, 2, 0)}},
		"bad limits":  {Now: now, Limits: Limits{Budget: 99}},
		"bad pattern": {Now: now, Filter: Filter{Include: []string{"["}}},
	} {
		if _, err := Make(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Whatever the backlog, with nothing else changing it is gone after
// ⌈backlog/budget⌉ nights, taken oldest first.
func TestBacklogBound(t *testing.T) {
	for _, tc := range []struct{ backlog, budget int }{{0, 40}, {1, 40}, {40, 40}, {41, 40}, {200, 40}, {199, 7}} {
		var sources []Source
		for i := range tc.backlog {
			sources = append(sources, src(i, 1, time.Duration(tc.backlog-i)*time.Hour))
		}
		var records []catalog.Record
		nights := 0
		at := now
		for ; ; nights++ {
			p, err := Make(Input{Now: at, Sources: sources, Records: records, Limits: Limits{Budget: tc.budget}})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Scheduled) == 0 {
				break
			}
			for _, it := range p.Scheduled {
				r := catalog.Record{Schema: 1, AccessID: it.ID.AccessID, Name: it.ID.Name}
				r.Verified(catalog.Archive{Version: it.Version, At: it.NotBefore})
				r.StartJob("j"+it.ID.Name, it.NotBefore)
				r.EndJob("j" + it.ID.Name)
				records = append(records, r)
			}
			at = at.Add(24 * time.Hour)
		}
		if want := (tc.backlog + tc.budget - 1) / tc.budget; nights != want {
			t.Errorf("backlog %d, budget %d: %d nights, want %d", tc.backlog, tc.budget, nights, want)
		}
	}
}

func TestEMFLine(t *testing.T) {
	p, err := Make(Input{Now: now, Sources: []Source{src(0, 1, 50*time.Hour), src(1, 1, time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	line, err := EMFLine(MetricNamespace, now, map[string]string{"Account": "prod"}, p.Metrics())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Account            string
		DataSourcesPastRPO float64
		MaxStalenessHours  float64
	}
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	cw := doc.AWS.CloudWatchMetrics
	if doc.AWS.Timestamp != now.UnixMilli() || len(cw) != 1 || cw[0].Namespace != "sdsops" || len(cw[0].Dimensions) != 1 || cw[0].Dimensions[0][0] != "Account" {
		t.Errorf("metadata %s", line)
	}
	if doc.Account != "prod" || doc.DataSourcesPastRPO != 1 || doc.MaxStalenessHours != 50 || len(cw[0].Metrics) != 5 || cw[0].Metrics[0].Name != MetricPastRPO {
		t.Errorf("values %s", line)
	}
	if strings.ContainsAny(string(line), "\r\n") {
		t.Errorf("not one line: %s", line)
	}
	for name, f := range map[string]func() ([]byte, error){
		"no namespace": func() ([]byte, error) { return EMFLine("", now, nil, p.Metrics()) },
		"no metrics":   func() ([]byte, error) { return EMFLine("x", now, nil, nil) },
		"clash":        func() ([]byte, error) { return EMFLine("x", now, map[string]string{MetricPastRPO: "a"}, p.Metrics()) },
		"empty dim":    func() ([]byte, error) { return EMFLine("x", now, map[string]string{"A": ""}, p.Metrics()) },
		"repeated":     func() ([]byte, error) { return EMFLine("x", now, nil, []Metric{{"A", "", 1}, {"A", "", 2}}) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkMake plans a night of 500 data sources, half of them changed,
// with a day of jobs in the window.
func BenchmarkMake(b *testing.B) {
	var in Input
	in.Now = now
	for i := range 500 {
		in.Sources = append(in.Sources, src(i, 2, time.Duration(i)*time.Minute))
		r := archived(i, 1+i%2)
		r.StartJob(fmt.Sprint(i), now.Add(-time.Duration(i)*time.Hour/20))
		in.Records = append(in.Records, r)
	}
	for range 40 {
		in.Jobs = append(in.Jobs, listed(5*time.Hour, sds.StatusCompleted))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Make(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestObserveUpToDateClearsPendingMark: a backup that failed after its
// version was archived (a manual one, a delete's) left a pending mark; a
// night that finds the published version archived clears it, so that the
// data source is neither reported pending nor carried over for ever.
func TestObserveUpToDateClearsPendingMark(t *testing.T) {
	r := archived(0, 1)
	r.PendingSince, r.LastError = now.Add(-30*time.Hour), "JobAborted: export failed"
	p, err := Make(Input{Now: now, Sources: []Source{src(0, 1, 80*time.Hour)}, Records: []catalog.Record{r}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Items[0].State != UpToDate || len(p.Scheduled)+len(p.CarriedOver) != 0 {
		t.Fatalf("plan %+v: want it up to date and nothing to do", p.Items)
	}
	if err := p.Observe(p.Items[0])(&r); err != nil {
		t.Fatal(err)
	}
	if !r.PendingSince.IsZero() || r.LastError == "" {
		t.Errorf("after the night: pending since %s, last error %q: want no pending mark, the error kept", r.PendingSince, r.LastError)
	}

	// A changed data source keeps the mark it had.
	changed := archived(0, 1)
	changed.PendingSince = now.Add(-30 * time.Hour)
	p, _ = Make(Input{Now: now, Sources: []Source{src(0, 2, 10*time.Hour)}, Records: []catalog.Record{changed}})
	if err := p.Observe(p.Items[0])(&changed); err != nil {
		t.Fatal(err)
	}
	if !changed.PendingSince.Equal(now.Add(-30 * time.Hour)) {
		t.Errorf("a changed data source's pending mark became %s", changed.PendingSince)
	}
}
