package drill

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
)

// docsName is the documented alphabet of data source names (Load Data
// Source: up to 50 alphanumeric characters and ~ ` ! $ ^ _ = { }).
var docsName = regexp.MustCompile("^[A-Za-z0-9~`!$^_={}]{1,50}$")

func TestScratchName(t *testing.T) {
	at := time.Date(2026, 12, 6, 8, 20, 31, 0, time.FixedZone("x", 3600))
	a := ScratchName(catalog.ID{AccessID: "20181f26d9e94c81acdf9496133d4f23", Name: "FourthCoffeeSample"}, at)
	b := ScratchName(catalog.ID{AccessID: "20181f26d9e94c81acdf9496133d4f23", Name: "Other"}, at)
	if !docsName.MatchString(a) || sds.ValidateName(a) != nil {
		t.Errorf("%q is not a valid data source name", a)
	}
	if !strings.HasPrefix(a, ScratchPrefix+"20261206T072031~") || a == b {
		t.Errorf("names %q and %q: want the prefix, the UTC start and distinct hashes", a, b)
	}
	for name, want := range map[string]bool{a: true, strings.ToUpper(a): true, ScratchPrefix: false, "sdsopsdrill": false, "FourthCoffeeSample": false, "my" + ScratchPrefix + "x": false} {
		if IsScratch(name) != want {
			t.Errorf("IsScratch(%q) = %v", name, !want)
		}
	}
}

func rec(name string, archived bool, drill *catalog.Drill) catalog.Record {
	r := catalog.Record{AccessID: "a1", Name: name, FirstSeen: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), LastDrill: drill}
	if archived {
		r.ArchiveKey = "sds-exports/a1/" + name + ".xml"
	}
	return r
}

func TestNextTakesTheLongestAgoFirst(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	deleted := rec("Deleted", true, nil)
	deleted.DeletedAt = day(1)
	records := []catalog.Record{
		rec("Recent", true, &catalog.Drill{At: day(20), TriedAt: day(20), Outcome: catalog.DrillSucceeded}),
		rec("Old", true, &catalog.Drill{At: day(2), TriedAt: day(2), Outcome: catalog.DrillFailed}),
		// skipped on day 25 but last tried on day 1: its turn comes before Old's
		rec("Skipped", true, &catalog.Drill{At: day(25), TriedAt: day(1), Outcome: catalog.DrillSkipped}),
		rec("NeverB", true, nil),
		rec("NeverA", true, nil),
		rec("NoArchive", false, nil),
		deleted,
		rec(ScratchPrefix+"x", true, nil),
	}
	var got []string
	for _, id := range Next(records, 10) {
		got = append(got, id.Name)
	}
	if want := []string{"NeverA", "NeverB", "Skipped", "Old", "Recent"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if n := Next(records, 2); len(n) != 2 || n[1].Name != "NeverB" {
		t.Errorf("first two: %v", n)
	}
}

func TestPastAge(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	records := []catalog.Record{
		rec("NeverDrilledKnownLong", true, nil), // first seen 2026-01-01
		rec("SucceededLately", true, &catalog.Drill{At: now.AddDate(0, 0, -3), Outcome: catalog.DrillSucceeded, SucceededAt: now.AddDate(0, 0, -3)}),
		rec("FailingSinceSuccess", true, &catalog.Drill{At: now.AddDate(0, 0, -1), Outcome: catalog.DrillFailed, SucceededAt: now.AddDate(0, 0, -40)}),
		rec("NoArchive", false, nil),
	}
	fresh := rec("NewlyKnown", true, nil)
	fresh.FirstSeen = now.AddDate(0, 0, -2)
	records = append(records, fresh)
	if n := PastAge(records, now, DefaultMaxAge); n != 2 {
		t.Errorf("past drill age: %d, want 2 (never drilled for long, last success 40 days ago)", n)
	}
}

func TestRoom(t *testing.T) {
	lim := nightly.Limits{Budget: 40, Concurrency: 5}
	window := func(n int) nightly.Usage { return nightly.Usage{Window: make([]time.Time, n)} }
	for _, c := range []struct {
		name        string
		dataSources int
		used        nightly.Usage
		want        []string
	}{
		{"room", 24, window(38), nil},
		{"account full", 25, window(0), []string{"no free data source slot"}},
		{"budget used", 3, window(39), []string{"job budget"}},
		{"jobs running", 3, nightly.Usage{InProcess: 5}, []string{"in process"}},
		{"everything", 25, nightly.Usage{Window: make([]time.Time, 40), InProcess: 5}, []string{"slot", "budget", "in process"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			why := Room(c.dataSources, c.used, lim)
			if len(why) != len(c.want) {
				t.Fatalf("reasons %q, want %d", why, len(c.want))
			}
			for i, w := range c.want {
				if !strings.Contains(why[i], w) {
					t.Errorf("reason %q does not say %q", why[i], w)
				}
			}
		})
	}
}

func TestLoadCheck(t *testing.T) {
	for _, c := range []struct {
		l    Load
		want int
	}{
		{Load{EntityCount: 350, Processed: 350}, 0},
		{Load{EntityCount: 350, Processed: 349}, 1},
		{Load{EntityCount: 350, Processed: 350, Failed: 2}, 1},
		{Load{EntityCount: 350, Processed: 300, Failed: 50}, 2},
	} {
		if got := c.l.Check(); len(got) != c.want {
			t.Errorf("%+v: %q, want %d reasons", c.l, got, c.want)
		}
	}
}
