package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/s3err"
	"github.com/sdsops/sdsops/internal/task"
)

// Status is the JSON form of `sdsops status`: one entry per data source,
// worst first.
type Status struct {
	// Night is the latest nightly run, from its report.
	Night       NightSummary   `json:"night"`
	RPOHours    float64        `json:"rpoHours"`
	PastRPO     int            `json:"pastRpo"`
	DataSources []SourceStatus `json:"dataSources"`
	// Damaged are catalog records that could not be read.
	Damaged []catalog.Damaged `json:"damaged"`
}

// SourceStatus is one data source in Status.
type SourceStatus struct {
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
	// State is the inventory's: up-to-date, pending, needs-key, deleted
	// or damaged.
	State           string         `json:"state"`
	PastRPO         bool           `json:"pastRpo"`
	VerifiedVersion string         `json:"verifiedVersion,omitempty"`
	VerifiedAt      time.Time      `json:"verifiedAt,omitzero"`
	ArchiveKey      string         `json:"archiveKey,omitempty"`
	StalenessHours  float64        `json:"stalenessHours"`
	PendingSince    time.Time      `json:"pendingSince,omitzero"`
	LastError       string         `json:"lastError,omitempty"`
	LastErrorAt     time.Time      `json:"lastErrorAt,omitzero"`
	LastDrill       *catalog.Drill `json:"lastDrill,omitempty"`
	Visibility      string         `json:"visibility,omitempty"`
	// LastNight is what the last nightly run that saw the data source did
	// with it (its catalog record's lastNight).
	LastNight *catalog.Night `json:"lastNight,omitempty"`
}

// recordView is the part of a catalog record status shows beyond the
// index: read from the object itself, so that a field this build does
// not know (or one not written yet) does no harm.
type recordView struct {
	ArchiveKey  string         `json:"archiveKey"`
	LastError   string         `json:"lastError"`
	LastErrorAt time.Time      `json:"lastErrorAt"`
	LastDrill   *catalog.Drill `json:"lastDrill"`
	LastNight   *catalog.Night `json:"lastNight"`
}

// ObjectGetter reads objects of the archive bucket.
type ObjectGetter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// recordReads bounds the catalog records status reads at once.
const recordReads = 8

func runStatus(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	rpoFlag := fs.Duration("rpo", 0, "recovery-point objective (default: the stack's NightlyRpoHours, 48h)")
	if _, err := a.parse(fs, args, 0, 0, verbs()["status"].usage); err != nil {
		return err
	}
	rpo := *rpoFlag
	if rpo <= 0 {
		rpo = a.rpo(ctx)
	}
	inv, err := a.inventory(ctx)
	if err != nil {
		return err
	}
	records, err := a.recordReader(ctx)
	if err != nil {
		return err
	}
	night, err := a.nightSummary(ctx)
	if err != nil {
		return err
	}
	st := Status{Night: night, RPOHours: rpo.Hours(), DataSources: []SourceStatus{}, Damaged: inv.Damaged}
	if st.Damaged == nil {
		st.Damaged = []catalog.Damaged{}
	}
	// One record read per data source, a few at once: an account of
	// hundreds answers in seconds.
	st.DataSources = make([]SourceStatus, len(inv.DataSources))
	errs := make([]error, len(inv.DataSources))
	sem := make(chan struct{}, recordReads)
	var wg sync.WaitGroup
	for i, e := range inv.DataSources {
		st.DataSources[i] = sourceStatus(e, rpo)
		if e.State == "damaged" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			v, err := records(ctx, catalog.ID{AccessID: e.AccessID, Name: e.Name})
			s := &st.DataSources[i]
			s.ArchiveKey, s.LastError, s.LastErrorAt, s.LastDrill, s.LastNight, errs[i] = v.ArchiveKey, v.LastError, v.LastErrorAt, v.LastDrill, v.LastNight, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, s := range st.DataSources {
		if s.PastRPO {
			st.PastRPO++
		}
	}
	slices.SortStableFunc(st.DataSources, func(x, y SourceStatus) int {
		return cmp.Or(cmp.Compare(severity(x), severity(y)), cmp.Compare(y.StalenessHours, x.StalenessHours),
			strings.Compare(strings.ToLower(x.DataSourceName), strings.ToLower(y.DataSourceName)))
	})
	if a.opts.json {
		if err := writeJSON(a.io.Stdout, st); err != nil {
			return err
		}
	} else {
		bucket, _ := a.bucket(ctx)
		printNightHeader(a.io.Stdout, "last night", st.Night, bucket)
		printStatus(a.io.Stdout, st)
	}
	if st.PastRPO > 0 {
		return &exitError{ExitPastRPO, errSilentIf(a.opts.json, fmt.Errorf("%s past the RPO of %s", plural(st.PastRPO, "data source", "data sources"), hours(st.RPOHours)))}
	}
	return nil
}

// errSilentIf keeps stderr quiet for scripts, which read the JSON.
func errSilentIf(quiet bool, err error) error {
	if quiet {
		return errSilent
	}
	return err
}

func sourceStatus(e task.InventoryEntry, rpo time.Duration) SourceStatus {
	s := SourceStatus{AccessID: e.AccessID, DataSourceName: e.Name, State: e.State, VerifiedVersion: e.VerifiedVersion,
		VerifiedAt: e.VerifiedAt, StalenessHours: e.StalenessHours, PendingSince: e.PendingSince, Visibility: e.Visibility}
	// As the nightly plan counts it: a current version without a verified
	// archive for longer than the RPO.
	switch e.State {
	case "pending", "needs-key", "damaged":
		s.PastRPO = e.StalenessHours > rpo.Hours()
	}
	return s
}

// severity orders status lines, worst first.
func severity(s SourceStatus) int {
	switch {
	case s.State == "damaged":
		return 0
	case s.PastRPO:
		return 1
	case s.State == "needs-key":
		return 2
	case s.LastError != "" || (s.LastDrill != nil && s.LastDrill.Outcome == catalog.DrillFailed):
		return 3
	case s.State == "pending":
		return 4
	case s.State == "deleted":
		return 6
	}
	return 5
}

// recordReader reads catalog records from the archive bucket with the
// caller's credentials: the API has no route for them.
func (a *app) recordReader(ctx context.Context) (func(context.Context, catalog.ID) (recordView, error), error) {
	bucket, err := a.bucket(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.s3(ctx)
	if err != nil {
		return nil, err
	}
	keys := catalog.New(c, bucket, "")
	return func(ctx context.Context, id catalog.ID) (recordView, error) {
		return readRecord(ctx, c, bucket, keys.RecordKey(id))
	}, nil
}

func readRecord(ctx context.Context, api ObjectGetter, bucket, key string) (recordView, error) {
	var v recordView
	data, err := getObject(ctx, api, bucket, key, "catalog record", 8<<20)
	if err != nil || data == nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		v.LastError = "catalog record unreadable: " + err.Error()
	}
	return v, nil
}

// getObject reads the object at key, at most limit bytes; nil without
// error when there is none.
func getObject(ctx context.Context, api ObjectGetter, bucket, key, what string, limit int64) ([]byte, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if s3err.NotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s s3://%s/%s: %w", what, bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("reading %s s3://%s/%s: %w", what, bucket, key, err)
	}
	return data, nil
}

func printStatus(w io.Writer, st Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tDATA SOURCE\tLAST VERIFIED\tSTALENESS\tLAST NIGHT\tLAST ERROR\tLAST DRILL")
	for _, s := range st.DataSources {
		state := strings.ToUpper(s.State)
		if s.PastRPO {
			state = "PAST-RPO " + s.State
		}
		verified := "never"
		if !s.VerifiedAt.IsZero() {
			verified = s.VerifiedAt.UTC().Format("2006-01-02 15:04Z")
		}
		stale := "-"
		if s.StalenessHours > 0 {
			stale = hours(s.StalenessHours)
			if !s.PendingSince.IsZero() {
				stale += " (since " + s.PendingSince.UTC().Format(time.DateOnly) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", state, s.AccessID, s.DataSourceName, verified, stale,
			nightText(s.LastNight), orDash(clip(s.LastError, 48)), drillText(s.LastDrill))
	}
	tw.Flush()
	for _, d := range st.Damaged {
		fmt.Fprintf(w, "damaged catalog record %s: %s\n", d.Key, d.Problem)
	}
	fmt.Fprintf(w, "%s, %d past the RPO of %s\n", plural(len(st.DataSources), "data source", "data sources"), st.PastRPO, hours(st.RPOHours))
}

func nightText(n *catalog.Night) string {
	if n == nil {
		return "-"
	}
	s := n.At.UTC().Format("01-02") + " " + n.Status
	if n.Error != "" {
		s += " " + n.Error
	}
	return s
}

func drillText(d *catalog.Drill) string {
	if d == nil {
		return "-"
	}
	s := d.At.UTC().Format("2006-01-02") + " " + d.Outcome
	if len(d.Reasons) > 0 {
		s += ": " + clip(d.Reasons[0], 40)
	}
	return s
}

func hours(h float64) string {
	if h >= 48 {
		return fmt.Sprintf("%.0fd%.0fh", float64(int(h)/24), h-float64(int(h)/24*24))
	}
	return fmt.Sprintf("%.1fh", h)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
