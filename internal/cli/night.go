package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/sdsops/sdsops/internal/task"
)

// NightPlan is the JSON form of `sdsops night --dry-run`: the discover
// function's dry run, which plans as the next nightly run would and
// records nothing.
type NightPlan struct {
	Seen        int           `json:"seen"`
	UpToDate    int           `json:"upToDate"`
	CarriedOver int           `json:"carriedOver"`
	NeedsKey    int           `json:"needsKey"`
	PastRPO     int           `json:"pastRpo"`
	Damaged     []string      `json:"damagedRecords"`
	Plan        task.PlanView `json:"plan"`
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runNight(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("night", flag.ContinueOnError)
	dry := fs.Bool("dry-run", false, "show the plan; required: the nightly run itself starts on its schedule")
	var include, exclude listFlag
	fs.Var(&include, "include", "also narrow to this pattern (NAME or ACCESSID/NAME, wildcards), as the run's input would; repeatable")
	fs.Var(&exclude, "exclude", "also leave out this pattern; repeatable")
	if _, err := a.parse(fs, args, 0, 0, verbs()["night"].usage); err != nil {
		return err
	}
	if !*dry {
		return usageErrorf("only --dry-run: the nightly run starts on its schedule (or with aws stepfunctions start-execution on the stack output NightlyStateMachineArn)")
	}
	ev := map[string]any{"dryRun": true}
	if len(include) > 0 {
		ev["include"] = []string(include)
	}
	if len(exclude) > 0 {
		ev["exclude"] = []string(exclude)
	}
	var res task.DiscoverResult
	if err := a.invoke(ctx, envDiscover, "DiscoverFunction", ev, &res); err != nil {
		return fmt.Errorf("planning the night: %w", err)
	}
	if res.Plan == nil {
		return fmt.Errorf("the discover function returned no plan: is it older than this sdsops (no dry run)?")
	}
	p := NightPlan{Seen: res.Seen, UpToDate: res.UpToDate, CarriedOver: res.CarriedOver, NeedsKey: res.NeedsKey,
		PastRPO: res.PastRPO, Damaged: res.DamagedRecords, Plan: *res.Plan}
	if p.Damaged == nil {
		p.Damaged = []string{}
	}
	if a.opts.json {
		return writeJSON(a.io.Stdout, p)
	}
	printNight(a.io.Stdout, p)
	return nil
}

func printNight(w io.Writer, p NightPlan) {
	v := p.Plan
	backups := 0
	for _, it := range v.Items {
		if it.Action == "backup" {
			backups++
		}
	}
	fmt.Fprintf(w, "next night (dry run: nothing recorded, nothing started)\n")
	fmt.Fprintf(w, "%s seen: %d to back up, %d carried over, %d up to date, %d need a key; %d past the RPO of %s\n",
		plural(p.Seen, "data source", "data sources"), backups, p.CarriedOver, p.UpToDate, p.NeedsKey, p.PastRPO, hours(v.RPOHours))
	fmt.Fprintf(w, "SDS jobs in the last 24 h: %d (sdsops's %d) of a budget of %d; in process: %d; concurrency tonight: %d\n",
		v.JobsInWindow, v.OwnJobsInWindow, v.Budget, v.InProcess, v.Concurrency)
	items := slices.Clone(v.Items)
	rank := map[string]int{"backup": 0, "carry-over": 1, "none": 2}
	slices.SortStableFunc(items, func(x, y task.PlanViewItem) int { return rank[x.Action] - rank[y.Action] })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tSTATE\tDATA SOURCE\tVERSION\tSTALENESS\tNOT BEFORE")
	for _, it := range items {
		stale := "-"
		if it.StalenessHours > 0 {
			stale = hours(it.StalenessHours)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\n", it.Action, it.State, it.AccessID, it.DataSourceName, it.Version, stale, orDash(it.NotBefore))
	}
	tw.Flush()
	for _, k := range p.Damaged {
		fmt.Fprintf(w, "damaged catalog record %s: its data source is planned as new\n", k)
	}
}
