// Package drill decides the restore drills: which data sources are drilled
// next, whether the account has room for a drill now, the name of the
// scratch data source a drill loads into, and whether a load proved the
// archive restorable.
//
// A drill loads a data source's newest verified, restorable archive into a
// new scratch data source, checks the load job's counts against the
// archive, and deletes the scratch data source: two SDS jobs (the load and
// the delete), and one of the account's data source slots while it runs.
// Drills draw on the nightly run's 24-hour job budget (nightly.Used counts
// both) and never start without a free slot.
package drill

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
)

// ScratchPrefix starts the name of every scratch data source. It keeps to
// the documented name alphabet (letters, digits and ~ ` ! $ ^ _ = { }),
// and the tilde, which people rarely put in a name, sets it apart from
// users' names. The prefix is reserved: the nightly run never backs up a
// data source named so, and a user restore refuses such a target.
const ScratchPrefix = "sdsopsdrill~"

// JobsPerDrill is what one drill costs of the job budget: the load and the
// delete of the scratch data source.
const JobsPerDrill = 2

// MaxDataSources is the enterprise account's data source limit ("Geocode
// and Data Source Limits"); a load of a new data source beyond it is
// refused with HTTP 403.
const MaxDataSources = 25

// Defaults of the drill's parameters.
const (
	DefaultPerRun = 7
	DefaultMaxAge = 35 * 24 * time.Hour
)

// IsScratch reports whether name is a scratch data source's.
func IsScratch(name string) bool {
	return len(name) > len(ScratchPrefix) && strings.EqualFold(name[:len(ScratchPrefix)], ScratchPrefix)
}

// ScratchName is the scratch data source of a drill of id started at:
// the prefix, the start time to the second and a hash of the data source,
// 36 characters, within SDS's 50.
func ScratchName(id catalog.ID, at time.Time) string {
	h := sha256.Sum256([]byte(id.Key()))
	return ScratchPrefix + at.UTC().Format("20060102T150405") + "~" + hex.EncodeToString(h[:4])
}

// drillable: a data source with a verified archive that sdsops has not
// deleted, and not a scratch one.
func drillable(r catalog.Record) bool {
	return r.ArchiveKey != "" && r.DeletedAt.IsZero() && !IsScratch(r.Name)
}

// Next picks up to n data sources to drill, the one tried longest ago
// first (never tried ones before all others). A skipped drill does not
// count as tried.
func Next(records []catalog.Record, n int) []catalog.ID {
	var c []catalog.Record
	for _, r := range records {
		if drillable(r) {
			c = append(c, r)
		}
	}
	slices.SortFunc(c, func(a, b catalog.Record) int {
		return cmp.Or(triedAt(a).Compare(triedAt(b)), strings.Compare(a.ID().Key(), b.ID().Key()))
	})
	out := make([]catalog.ID, 0, min(n, len(c)))
	for _, r := range c[:min(n, len(c))] {
		out = append(out, r.ID())
	}
	return out
}

func triedAt(r catalog.Record) time.Time {
	if r.LastDrill == nil {
		return time.Time{}
	}
	return r.LastDrill.TriedAt
}

// PastAge counts the drillable data sources whose last successful drill
// is older than maxAge at now; one never drilled successfully counts once
// sdsops has known it for longer than maxAge.
func PastAge(records []catalog.Record, now time.Time, maxAge time.Duration) int {
	n := 0
	for _, r := range records {
		if !drillable(r) {
			continue
		}
		since := r.FirstSeen
		if since.IsZero() {
			since = r.VerifiedAt
		}
		if r.LastDrill != nil && !r.LastDrill.SucceededAt.IsZero() {
			since = r.LastDrill.SucceededAt
		}
		if now.Sub(since) > maxAge {
			n++
		}
	}
	return n
}

// Room says whether a drill may start now: a free data source slot among
// the account's dataSources (scratch ones included), JobsPerDrill jobs left
// in the budget after everything started in the last 24 hours, and a job
// slot under the concurrency cap. When not, the reasons say why.
func Room(dataSources int, used nightly.Usage, lim nightly.Limits) []string {
	var why []string
	if dataSources >= MaxDataSources {
		why = append(why, fmt.Sprintf("no free data source slot: the account has %d data sources, the limit is %d", dataSources, MaxDataSources))
	}
	if n := len(used.Window); n+JobsPerDrill > lim.Budget {
		why = append(why, fmt.Sprintf("no room in the job budget: %d SDS jobs started in the last 24 hours, a drill needs %d more, the budget is %d", n, JobsPerDrill, lim.Budget))
	}
	if used.InProcess >= lim.Concurrency {
		why = append(why, fmt.Sprintf("%d SDS jobs in process, the cap is %d", used.InProcess, lim.Concurrency))
	}
	return why
}

// Load is what a drill's load reported, and what it was checked against.
type Load struct {
	EntityCount int64 // the archive's, from its manifest
	Processed   int64
	Failed      int64
}

// Check returns the reasons a completed load does not prove the archive
// restorable: every archived entity processed, none failed.
func (l Load) Check() []string {
	var why []string
	if l.Processed != l.EntityCount {
		why = append(why, fmt.Sprintf("the load processed %d entities, the archive holds %d", l.Processed, l.EntityCount))
	}
	if l.Failed != 0 {
		why = append(why, fmt.Sprintf("the load failed %d entities", l.Failed))
	}
	return why
}
