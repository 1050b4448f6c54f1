package accounttest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkNightly200 runs the nightly state machine over an account of 200
// data sources for several nights, 0 to 60 of them changing and some new
// ones appearing each night, with the default budget (40) and cap (5). It
// prints per night what the run did. `make bench-nightly`; not part of
// `make test` (several minutes).
func BenchmarkNightly200(b *testing.B) {
	changes := []int{0, 60, 0, 37, 60}
	created := []int{0, 3, 0, 5, 1}
	for range b.N {
		a := start(b, 200, 40, 5)
		rnd := rand.New(rand.NewPCG(14, 200))
		fmt.Printf("%-5s %5s %8s %9s %8s %9s %12s %16s %9s\n", "night", "seen", "changed", "archived", "carried", "SDS jobs", "transitions", "largest history", "duration")
		for i := range changes {
			if i > 0 {
				a.ageCatalog(nightGap)
			}
			var changed, added []string
			for _, k := range rnd.Perm(len(a.names))[:changes[i]] {
				if a.names[k] != lockedName {
					changed = append(changed, a.names[k])
				}
			}
			for j := range created[i] {
				added = append(added, fmt.Sprintf("New%d%02d", i, j))
			}
			a.change(changed, added)
			started := time.Now()
			n := a.run(fmt.Sprintf("bench-%d-%d", i+1, time.Now().UnixNano()))
			fmt.Printf("%-5d %5d %8d %9d %8d %9d %12d %16d %9s\n", i+1, n.seen, n.seen-n.upToDate, count(n.status, "Archived"),
				n.carriedOver, len(n.jobs), n.transitions, n.largest, time.Since(started).Round(time.Second))
			if len(n.jobs) > 40 {
				b.Errorf("night %d: %d jobs, budget 40", i+1, len(n.jobs))
			}
		}
	}
}
