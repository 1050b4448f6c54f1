package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/task"
)

// NightSummary is the latest night in short, the head of `sdsops status`:
// from the report the nightly run wrote last (reports/nightly/latest.json).
type NightSummary struct {
	// Found is false when no nightly run has written a report yet; the
	// other fields are then empty.
	Found      bool      `json:"found"`
	ReportKey  string    `json:"reportKey"`
	Execution  string    `json:"execution,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// AgeHours is the time since the run started; Overdue is true when it
	// is more than HeartbeatHours (the stack's NightlyHeartbeatHours): the
	// nightly run did not start on schedule.
	AgeHours       float64           `json:"ageHours"`
	HeartbeatHours float64           `json:"heartbeatHours"`
	Overdue        bool              `json:"overdue"`
	Outcome        string            `json:"outcome,omitempty"`
	RunError       *nightly.RunError `json:"runError,omitempty"`
	Counts         nightly.Counts    `json:"counts"`
	Jobs           nightly.JobUse    `json:"jobs"`
	// RetentionEnabled and RetentionDeleted: the retention step's policy
	// was on, and the archives it deleted.
	RetentionEnabled bool `json:"retentionEnabled"`
	RetentionDeleted int  `json:"retentionDeleted"`
	// Failed are the data sources whose backup failed, with the error
	// type and the reason.
	Failed []nightly.Entry `json:"failed"`
}

// reportLimit bounds a report read: one of a very large account is a
// few MB (one short entry per data source).
const reportLimit = 64 << 20

// nightSummary reads the latest report; Found is false without one.
func (a *app) nightSummary(ctx context.Context) (NightSummary, error) {
	ns := NightSummary{ReportKey: nightly.LatestReportKey(""), HeartbeatHours: a.heartbeat(ctx).Hours(), Failed: []nightly.Entry{}}
	rep, _, err := a.readReport(ctx, ns.ReportKey)
	if err != nil || rep == nil {
		return ns, err
	}
	ns = summarize(*rep, ns)
	ns.Overdue = ns.AgeHours > ns.HeartbeatHours
	return ns, nil
}

// summarize adds what rep says to ns.
func summarize(rep nightly.Report, ns NightSummary) NightSummary {
	ns.Found, ns.Execution, ns.StartedAt, ns.FinishedAt = true, rep.Execution, rep.StartedAt, rep.FinishedAt
	ns.AgeHours = time.Since(rep.StartedAt).Hours()
	ns.Outcome, ns.RunError, ns.Counts, ns.Jobs = rep.Outcome, rep.RunError, rep.Counts, rep.Jobs
	if r := rep.Retention; r != nil {
		ns.RetentionEnabled, ns.RetentionDeleted = r.Enabled, len(r.Deleted)
	}
	ns.Failed = []nightly.Entry{}
	for _, e := range rep.DataSources {
		if e.Status == task.StatusFailed {
			ns.Failed = append(ns.Failed, e)
		}
	}
	return ns
}

// readReport reads and decodes the report at key, also returning its
// bytes as stored; nil without error when there is none.
func (a *app) readReport(ctx context.Context, key string) (*nightly.Report, []byte, error) {
	bucket, err := a.bucket(ctx)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.s3(ctx)
	if err != nil {
		return nil, nil, err
	}
	data, err := getObject(ctx, c, bucket, key, "nightly report", reportLimit)
	if err != nil || data == nil {
		return nil, nil, err
	}
	var rep nightly.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, nil, fmt.Errorf("nightly report s3://%s/%s is not readable: %w", bucket, key, err)
	}
	return &rep, data, nil
}

func runReport(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	date := fs.String("date", "", "the night of this day (UTC, YYYY-MM-DD; the newest run of it)")
	execution := fs.String("execution", "", "the run of this execution name (or ARN)")
	if _, err := a.parse(fs, args, 0, 0, verbs()["report"].usage); err != nil {
		return err
	}
	var day time.Time
	if *date != "" {
		d, err := time.Parse(time.DateOnly, *date)
		if err != nil {
			return usageErrorf("--date %q: want YYYY-MM-DD", *date)
		}
		day = d
	}
	name := *execution
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:] // an ARN ends with the execution's name
	}
	if strings.ContainsAny(name, "/\\") || (*execution != "" && name == "") {
		return usageErrorf("--execution %q: want an execution name or ARN", *execution)
	}
	key, err := a.reportKey(ctx, day, name)
	if err != nil {
		return err
	}
	rep, raw, err := a.readReport(ctx, key)
	if err != nil {
		return err
	}
	bucket, _ := a.bucket(ctx) // read already
	where := "s3://" + bucket + "/" + key
	if rep == nil {
		if day.IsZero() && name == "" {
			return fmt.Errorf("no nightly report yet (%s): no nightly run has finished", where)
		}
		return &exitError{ExitUsage, fmt.Errorf("no nightly report %s", where)}
	}
	if a.opts.json {
		_, err := a.io.Stdout.Write(raw)
		return err
	}
	// The night's own key, also when read from the latest copy.
	printReport(a.io.Stdout, *rep, "s3://"+bucket+"/"+nightly.ReportKey("", rep.StartedAt, rep.Execution))
	return nil
}

// reportKey finds the key of the report asked for: the latest; the run
// named (of day, or of any day); or the newest run of day.
func (a *app) reportKey(ctx context.Context, day time.Time, name string) (string, error) {
	switch {
	case day.IsZero() && name == "":
		return nightly.LatestReportKey(""), nil
	case name != "" && !day.IsZero():
		return nightly.ReportKey("", day, name), nil
	}
	bucket, err := a.bucket(ctx)
	if err != nil {
		return "", err
	}
	c, err := a.s3(ctx)
	if err != nil {
		return "", err
	}
	// The reports' directory, or one day's of it: a year of nights is a
	// page or so.
	prefix := strings.TrimSuffix(nightly.LatestReportKey(""), "latest.json")
	if !day.IsZero() {
		prefix = strings.TrimSuffix(nightly.ReportKey("", day, "x"), "x.json")
	}
	var found string
	var newest time.Time
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("listing the nightly reports under s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if k == nightly.LatestReportKey("") || !strings.HasSuffix(k, ".json") {
				continue
			}
			if name != "" && strings.HasSuffix(k, "/"+name+".json") {
				return k, nil
			}
			if name == "" && !aws.ToTime(o.LastModified).Before(newest) {
				found, newest = k, aws.ToTime(o.LastModified)
			}
		}
	}
	if found == "" {
		what := "of " + day.Format(time.DateOnly)
		if name != "" {
			what = "of execution " + name
		}
		return "", &exitError{ExitUsage, fmt.Errorf("no nightly report %s under s3://%s/%s", what, bucket, prefix)}
	}
	return found, nil
}

// printNightHeader is the head of status and report: when the night ran,
// its outcome and counts, and what failed.
// label starts its first line.
func printNightHeader(w io.Writer, label string, ns NightSummary, bucket string) {
	if !ns.Found {
		fmt.Fprintf(w, "%s: NO NIGHTLY REPORT (s3://%s/%s): no nightly run has finished yet; see README \"The first run\"\n", label, bucket, ns.ReportKey)
		return
	}
	fmt.Fprintf(w, "%s: %s, started %s (%s ago), run %s\n", label, strings.ToUpper(ns.Outcome),
		ns.StartedAt.UTC().Format("2006-01-02 15:04Z"), ago(ns.AgeHours), ns.Execution)
	if ns.Overdue {
		fmt.Fprintf(w, "  OVERDUE: no nightly run has started for more than %s (NightlyHeartbeatHours): is the schedule running? README.md#nightlyheartbeatalarm\n", hours(ns.HeartbeatHours))
	}
	c, j := ns.Counts, ns.Jobs
	retention := "retention off"
	if ns.RetentionEnabled {
		retention = fmt.Sprintf("retention deleted %d", ns.RetentionDeleted)
	}
	fmt.Fprintf(w, "  seen %d, archived %d, carried over %d, failed %d, past the RPO at its start %d; SDS jobs %d of a budget of %d (%d tonight); %s\n",
		c.Seen, c.Archived, c.CarriedOver, c.Failed, c.PastRPO, j.InWindowAtStart+j.StartedTonight, j.Budget, j.StartedTonight, retention)
	if e := ns.RunError; e != nil {
		fmt.Fprintf(w, "  run error: %s\n", joinNonEmpty(": ", e.Error, clip(e.Cause, 200)))
	}
	for _, e := range ns.Failed {
		fmt.Fprintf(w, "  FAILED %s/%s: %s\n", e.AccessID, e.DataSourceName, joinNonEmpty(": ", e.Error, clip(e.Reason, 200)))
	}
}

// printReport is a night's report for people: the status header, then
// every data source and what retention did.
func printReport(w io.Writer, rep nightly.Report, where string) {
	printNightHeader(w, "night", summarize(rep, NightSummary{}), "")
	fmt.Fprintf(w, "  finished %s after %s; report %s\n", rep.FinishedAt.UTC().Format("2006-01-02 15:04Z"),
		rep.FinishedAt.Sub(rep.StartedAt).Round(10*time.Millisecond), where)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tDATA SOURCE\tERROR\tREASON")
	for _, e := range rep.DataSources {
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\n", e.Status, e.AccessID, e.DataSourceName, orDash(e.Error), orDash(e.Reason))
	}
	tw.Flush()
	for _, k := range rep.DamagedRecords {
		fmt.Fprintf(w, "damaged catalog record %s\n", k)
	}
	if r := rep.Retention; r != nil && r.Enabled {
		fmt.Fprintf(w, "retention: keep the last %d verified versions and %d days; %d deleted, %d kept protected\n", r.KeepVersions, r.KeepDays, len(r.Deleted), r.ProtectedTotal)
		for _, d := range r.Deleted {
			fmt.Fprintf(w, "  deleted %s (%s)\n", d.Key, d.Reason)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  retention error: %s\n", e)
		}
	}
}

// ago is an age in hours for people: minutes under an hour.
func ago(h float64) string {
	if h < 1 {
		return fmt.Sprintf("%.0fm", h*60)
	}
	return hours(h)
}
