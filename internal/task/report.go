package task

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/retention"
)

// The end of a nightly run: retention applies the stack's policy, report
// writes the night's report to S3 and then publishes its summary. Discover
// prints the heartbeat as the run starts.

// Executions lists the running executions of the state machines whose
// work retention must not pull archives from under (restore, drill).
type Executions interface {
	ListExecutions(context.Context, *sfn.ListExecutionsInput, ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// Notifier publishes the night's summary.
type Notifier interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Operations of the report function.
const (
	NightRetention = "retention"
	NightReport    = "report"
)

// Night runs one of the end steps of a nightly run, by its operation.
func (s *Service) Night(ctx context.Context, raw []byte) (any, error) {
	var ev struct {
		Operation string `json:"operation"`
	}
	if err := s.decodeCatalogEvent(raw, "report", &ev); err != nil {
		return nil, err
	}
	switch ev.Operation {
	case NightRetention:
		return s.Retention(ctx, raw)
	case NightReport:
		return s.Report(ctx, raw)
	}
	return nil, invalid("report: operation %q: want %s or %s", truncate(ev.Operation, 40), NightRetention, NightReport)
}

// maxDeletionsPerNight bounds one night's deletions (and the retention
// step's output, which travels in the execution's state): a larger
// backlog is worked off over the following nights.
const maxDeletionsPerNight = 200

// retentionEvent is what the nightly state machine passes retention.
type retentionEvent struct {
	Operation string          `json:"operation"`
	Input     json.RawMessage `json:"input"` // the execution's input
}

// dryRun reports whether a nightly execution's input asks for a dry run:
// it backs up nothing, and retention and the report do nothing either.
func dryRun(input json.RawMessage) bool {
	var ev discoverEvent
	return len(input) > 0 && json.Unmarshal(input, &ev) == nil && ev.DryRun
}

// Retention applies the retention policy to every data source of the
// catalog and returns what it deleted and what it kept against the policy.
func (s *Service) Retention(ctx context.Context, raw []byte) (any, error) {
	var ev retentionEvent
	if err := s.decodeCatalogEvent(raw, "retention", &ev); err != nil {
		return nil, err
	}
	p := s.cfg.Retention
	out := nightly.RetentionReport{Enabled: p.Enabled(), KeepVersions: p.KeepVersions, KeepDays: int(p.KeepFor / (24 * time.Hour)),
		Deleted: []nightly.DeletedArchive{}, Protected: []nightly.ProtectedArchive{}}
	if !p.Enabled() || dryRun(ev.Input) {
		return out, nil
	}
	recs, _, err := s.dep.Catalog.List(ctx)
	if err != nil {
		return nil, catalogFailure(err)
	}
	busy, err := s.inUse(ctx)
	if err != nil {
		return nil, &Error{Type: ArchiveUnavailable, Message: "retention: which data sources a restore or drill is using: " + err.Error(), Err: err}
	}
	sw := retention.Sweeper{API: s.dep.Sweep, Bucket: s.cfg.ArchiveBucket, Layout: s.layout()}
	now := s.now().UTC()
	// The nights start at a different data source each, so that when time
	// or the deletion cap runs out the same ones are not always left.
	slices.SortFunc(recs, func(a, b catalog.Record) int { return strings.Compare(a.ID().Key(), b.ID().Key()) })
	if len(recs) > 0 {
		start := int(now.Unix()/86400) % len(recs)
		recs = slices.Concat(recs[start:], recs[:start])
	}
	for _, r := range recs {
		if len(out.Deleted) >= maxDeletionsPerNight || timeShort(ctx) {
			out.More = true
			break
		}
		if err := s.sweep(ctx, sw, r, busy, now, &out); err != nil {
			// One data source's trouble does not stop the others'.
			out.Errors = append(out.Errors, fmt.Sprintf("%s: %v", r.ID(), err))
			s.log.ErrorContext(ctx, "retention", slog.String("accessId", r.AccessID), slog.String("dataSourceName", r.Name), slog.String("error", err.Error()))
		}
	}
	s.log.InfoContext(ctx, "retention applied", slog.Int("deleted", len(out.Deleted)), slog.Int("protected", len(out.Protected)), slog.Int("errors", len(out.Errors)))
	return out, nil
}

// retentionReserve is the time left at which retention starts no further
// data source: one data source's sweep must fit in it, so that the step
// ends with its result (what it deleted) rather than a timeout.
const retentionReserve = time.Minute

func timeShort(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < retentionReserve
}

// sweep applies the policy to one data source.
func (s *Service) sweep(ctx context.Context, sw retention.Sweeper, r catalog.Record, busy func(catalog.ID) bool, now time.Time, out *nightly.RetentionReport) error {
	archives, err := sw.Archives(ctx, r.AccessID, r.Name)
	if err != nil {
		return err
	}
	for _, d := range retention.Decide(s.cfg.Retention, now, archives, r.ArchiveKey) {
		if !d.Delete {
			continue
		}
		protect := func(reason string) {
			out.ProtectedTotal++
			if len(out.Protected) < nightly.MaxProtectedListed {
				out.Protected = append(out.Protected, nightly.ProtectedArchive{AccessID: r.AccessID, DataSourceName: r.Name, Key: d.Key, Reason: reason})
			}
		}
		if busy(r.ID()) {
			protect(retention.KeptInUse)
			continue
		}
		locked, err := sw.Locked(ctx, d.Archive, now)
		if err != nil {
			return err
		}
		if locked != "" {
			protect(retention.KeptObjectLock)
			continue
		}
		if len(out.Deleted) >= maxDeletionsPerNight {
			out.More = true
			return nil
		}
		if err := sw.Delete(ctx, d.Archive); err != nil {
			return err
		}
		out.Deleted = append(out.Deleted, nightly.DeletedArchive{AccessID: r.AccessID, DataSourceName: r.Name, Key: d.Key,
			Version: d.Version, Verified: d.Verified, FinishedAt: d.FinishedAt, Objects: len(d.Objects), Reason: d.Reason})
	}
	return nil
}

// inUse returns which data sources a running execution of a guard state
// machine names. An execution whose input names none (or cannot be read)
// makes every data source busy: nothing is deleted that night.
func (s *Service) inUse(ctx context.Context) (func(catalog.ID) bool, error) {
	busy := map[string]bool{}
	all := false
	for _, arn := range s.cfg.GuardStateMachines {
		p := sfn.NewListExecutionsPaginator(s.dep.Executions, &sfn.ListExecutionsInput{StateMachineArn: &arn, StatusFilter: sfntypes.ExecutionStatusRunning})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, x := range page.Executions {
				d, err := s.dep.Executions.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: x.ExecutionArn})
				if err != nil {
					return nil, err
				}
				id, ok := s.namedIn(d.Input)
				if !ok {
					all = true
					continue
				}
				busy[id.Key()] = true
			}
		}
	}
	return func(id catalog.ID) bool { return all || busy[id.Key()] }, nil
}

// namedIn reads the data source an execution input names: by an archive
// key (restore's archiveKey, or key) or by accessId and dataSourceName.
func (s *Service) namedIn(input *string) (catalog.ID, bool) {
	var in struct {
		ArchiveKey     string `json:"archiveKey"`
		Key            string `json:"key"`
		AccessID       string `json:"accessId"`
		DataSourceName string `json:"dataSourceName"`
	}
	if input == nil || json.Unmarshal([]byte(*input), &in) != nil {
		return catalog.ID{}, false
	}
	for _, k := range []string{in.ArchiveKey, in.Key} {
		if r, err := s.layout().ParseKey(k); err == nil {
			return catalog.ID{AccessID: r.AccessID, Name: r.DataSourceName}, true
		}
	}
	if in.AccessID != "" && in.DataSourceName != "" {
		return catalog.ID{AccessID: in.AccessID, Name: in.DataSourceName}, true
	}
	return catalog.ID{}, false
}

// stepError is a caught Step Functions error.
type stepError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// reportEvent is what the nightly state machine passes report: the
// execution, discover's summary (absent when discovery failed), the
// items' results, and retention's result or caught error.
type reportEvent struct {
	Operation    string          `json:"operation"`
	Execution    string          `json:"execution"`
	ExecutionARN string          `json:"executionArn"`
	StartedAt    string          `json:"startedAt"` // the execution's start
	Input        json.RawMessage `json:"input"`     // the execution's input: the run's own filter
	RunError     *stepError      `json:"runError"`
	Discover     *struct {
		RunStartedAt   string         `json:"runStartedAt"`
		Seen           int            `json:"seen"`
		PastRPO        int            `json:"pastRpo"`
		DamagedRecords []string       `json:"damagedRecords"`
		Jobs           nightly.JobUse `json:"jobs"`
		Scheduled      int            `json:"scheduled"`
	} `json:"discover"`
	Results   []RecordResult  `json:"results"`
	Retention json.RawMessage `json:"retention"`
}

// OutcomeDryRun is report's outcome for a dry run: nothing written.
const OutcomeDryRun = "dry-run"

// ReportResult is report's output.
type ReportResult struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	Outcome   string `json:"outcome"`
	Published bool   `json:"published"`
}

// Report writes the night's report to S3, then a copy as the latest, and
// then publishes the summary: on failure always, on success when
// SUMMARY_ON_SUCCESS says so. A failed publish is ArchiveUnavailable,
// which the state machine retries: the report is written again from the
// same event (only its finish time moves), and then published.
func (s *Service) Report(ctx context.Context, raw []byte) (any, error) {
	var ev reportEvent
	if err := s.decodeCatalogEvent(raw, "report", &ev); err != nil {
		return nil, err
	}
	if ev.Execution == "" {
		return nil, invalid("report: execution is required")
	}
	if dryRun(ev.Input) {
		return ReportResult{Bucket: s.cfg.ArchiveBucket, Outcome: OutcomeDryRun}, nil
	}
	rep, recs, err := s.buildReport(ctx, ev)
	if err != nil {
		return nil, err
	}
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, &Error{Type: Internal, Message: "report: " + err.Error()}
	}
	key := nightly.ReportKey(s.cfg.CatalogPrefix, rep.StartedAt, rep.Execution)
	for _, k := range []string{key, nightly.LatestReportKey(s.cfg.CatalogPrefix)} {
		if err := s.putWhole(ctx, k, body); err != nil {
			return nil, err
		}
	}
	s.recordNight(ctx, rep, key, recs)
	out := ReportResult{Bucket: s.cfg.ArchiveBucket, Key: key, Outcome: rep.Outcome}
	if s.cfg.SummaryTopicARN != "" && (rep.Outcome == nightly.OutcomeFailed || s.cfg.SummaryOnSuccess) {
		subject, text := summary(rep, "s3://"+s.cfg.ArchiveBucket+"/"+key)
		_, err := s.dep.Notifier.Publish(ctx, &sns.PublishInput{TopicArn: &s.cfg.SummaryTopicARN, Subject: &subject, Message: &text,
			MessageAttributes: map[string]snstypes.MessageAttributeValue{
				"kind":    {DataType: aws.String("String"), StringValue: aws.String("nightly-summary")},
				"outcome": {DataType: aws.String("String"), StringValue: aws.String(rep.Outcome)},
			}})
		if err != nil {
			return nil, &Error{Type: ArchiveUnavailable, Message: "report: publishing the summary: " + err.Error(), Err: err}
		}
		out.Published = true
	}
	s.log.InfoContext(ctx, "night reported", slog.String("key", key), slog.String("outcome", rep.Outcome), slog.Bool("published", out.Published))
	return out, nil
}

// recordNight writes each data source's line of the report into its
// catalog record (lastNight) and the index. The report is already
// written: a catalog that cannot be written is logged, not a failure.
func (s *Service) recordNight(ctx context.Context, rep nightly.Report, key string, recs []catalog.Record) {
	byKey := make(map[string]catalog.Record, len(recs))
	for _, r := range recs {
		byKey[r.ID().Key()] = r
	}
	var written []catalog.Record
	var errs []error
	for _, e := range rep.DataSources {
		cur, ok := byKey[catalog.ID{AccessID: e.AccessID, Name: e.DataSourceName}.Key()]
		if !ok {
			continue // a damaged record: only a backup's record step replaces it
		}
		w, err := s.dep.Catalog.UpdateFrom(ctx, cur, func(r *catalog.Record) error {
			r.LastNight = &catalog.Night{Report: key, At: rep.StartedAt, Status: e.Status, Error: e.Error, Reason: e.Reason}
			return nil
		})
		if err != nil && !errors.Is(err, catalog.ErrIndexNotUpdated) {
			errs = append(errs, err)
			continue
		}
		written = append(written, w)
	}
	if err := s.dep.Catalog.UpdateIndex(ctx, written...); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		s.log.WarnContext(ctx, "the night's outcomes not all written to the catalog", slog.String("error", err.Error()))
	}
}

// putWhole writes body in one request with its checksum: S3 stores all
// of it or nothing, so a report is never half-written.
func (s *Service) putWhole(ctx context.Context, key string, body []byte) error {
	sum := sha256.Sum256(body)
	_, err := s.dep.Objects.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.cfg.ArchiveBucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
	if err != nil {
		return &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("report: write s3://%s/%s: %v", s.cfg.ArchiveBucket, key, err), Err: err}
	}
	return nil
}

// buildReport puts together the night from the event and the catalog
// after the run.
func (s *Service) buildReport(ctx context.Context, ev reportEvent) (nightly.Report, []catalog.Record, error) {
	now := s.now().UTC()
	rep := nightly.Report{Schema: nightly.ReportSchema, Execution: ev.Execution, ExecutionARN: ev.ExecutionARN, FinishedAt: now,
		Outcome: nightly.OutcomeSucceeded, DataSources: []nightly.Entry{}, DamagedRecords: []string{}}
	rep.StartedAt, _ = time.Parse(time.RFC3339Nano, ev.StartedAt)
	if ev.RunError != nil {
		rep.RunError = &nightly.RunError{Error: ev.RunError.Error, Cause: clean(ev.RunError.Cause, 2000)}
	}
	if len(ev.Retention) > 0 && string(ev.Retention) != "null" {
		var caught stepError
		var rr nightly.RetentionReport
		if json.Unmarshal(ev.Retention, &caught) == nil && caught.Error != "" {
			rep.RunError = cmp.Or(rep.RunError, &nightly.RunError{Error: caught.Error, Cause: clean("retention: "+caught.Cause, 2000)})
		} else if err := json.Unmarshal(ev.Retention, &rr); err == nil {
			rep.Retention = &rr
			if len(rr.Errors) > 0 {
				rep.Outcome = nightly.OutcomeFailed
			}
		}
	}
	if rep.RunError != nil {
		rep.Outcome = nightly.OutcomeFailed
	}
	d := ev.Discover
	if d == nil {
		if rep.StartedAt.IsZero() {
			rep.StartedAt = now
		}
		return rep, nil, nil
	}
	runStarted, err := time.Parse(time.RFC3339Nano, d.RunStartedAt)
	if err != nil {
		return rep, nil, invalid("report: discover.runStartedAt: want RFC 3339")
	}
	if rep.StartedAt.IsZero() {
		rep.StartedAt = runStarted
	}
	rep.Jobs = d.Jobs
	rep.Counts.Seen, rep.Counts.PastRPO, rep.Counts.Scheduled = d.Seen, d.PastRPO, d.Scheduled
	rep.DamagedRecords = append(rep.DamagedRecords, d.DamagedRecords...)

	recs, _, err := s.dep.Catalog.List(ctx)
	if err != nil {
		return rep, nil, catalogFailure(err)
	}
	byKey := make(map[string]catalog.Record, len(recs))
	for _, r := range recs {
		byKey[r.ID().Key()] = r
		for _, j := range r.Jobs {
			if !j.Created.Before(runStarted.Add(-time.Second)) {
				rep.Jobs.StartedTonight++
			}
		}
	}
	filter := s.runFilter(ev.Input)
	reported := map[string]bool{}
	for _, res := range ev.Results {
		id := catalog.ID{AccessID: res.AccessID, Name: res.DataSourceName}
		reported[id.Key()] = true
		e := nightly.Entry{AccessID: res.AccessID, DataSourceName: res.DataSourceName, Status: res.Status, Error: res.Error}
		r := byKey[id.Key()]
		switch res.Status {
		case StatusArchived:
			rep.Counts.Archived++
		case StatusFailed:
			rep.Counts.Failed++
			rep.Outcome = nightly.OutcomeFailed
			if !r.LastErrorAt.Before(runStarted) && r.LastError != "" {
				e.Reason = clean(strings.TrimPrefix(r.LastError, res.Error+": "), 500)
			} else if res.Error == "CatalogNotUpdated" {
				e.Reason = "the outcome could not be written to the catalog"
			}
		case StatusThrottled:
			rep.Counts.Throttled++
			e.Reason = "SDS answered 429 (the account's job limits): carried over to the next night"
		case StatusSkipped:
			rep.Counts.Skipped++
			e.Reason = "not started after SDS answered 429 to another backup tonight: carried over to the next night"
		case StatusNeedsKey:
			rep.Counts.NeedsKey++
			e.Reason = "no configured master key opens it (" + r.KeyRef + "): set a key override"
		}
		rep.DataSources = append(rep.DataSources, e)
	}
	for _, r := range recs {
		if reported[r.ID().Key()] || !r.LastSeen.Equal(runStarted) {
			continue // not seen tonight, or reported above
		}
		e := nightly.Entry{AccessID: r.AccessID, DataSourceName: r.Name}
		switch {
		case !filter.Match(r.ID()):
			e.Status, e.Reason = nightly.ReportExcluded, "left out by NightlyInclude / NightlyExclude or the run's input"
			rep.Counts.Excluded++
		case r.NeedsKey:
			e.Status, e.Reason = StatusNeedsKey, "no configured master key opens it ("+r.KeyRef+"): not tried again until its key source changes"
			rep.Counts.NeedsKey++
		case r.VerifiedVersion != "" && r.PendingSince.IsZero():
			e.Status = nightly.ReportUpToDate
			rep.Counts.UpToDate++
		default:
			e.Status, e.Reason = nightly.ReportCarriedOver, carriedOverReason(d.Jobs, d.Scheduled)
			rep.Counts.CarriedOver++
		}
		rep.DataSources = append(rep.DataSources, e)
	}
	rep.Counts.CarriedOver += rep.Counts.Throttled + rep.Counts.Skipped
	// A failed backup is counted as one job: SDS counts a job that was
	// created and then failed, and the catalog records only the jobs of
	// archived backups.
	rep.Jobs.StartedTonight += rep.Counts.Failed
	slices.SortStableFunc(rep.DataSources, func(a, b nightly.Entry) int {
		return cmp.Or(statusRank(a.Status)-statusRank(b.Status), strings.Compare(strings.ToLower(a.DataSourceName), strings.ToLower(b.DataSourceName)))
	})
	return rep, recs, nil
}

// carriedOverReason says why a pending data source waits for another
// night: the cause the plan found, in its figures.
func carriedOverReason(j nightly.JobUse, scheduled int) string {
	const next = "; it comes first next night"
	switch j.CarryCause {
	case nightly.CarryConcurrency:
		return fmt.Sprintf("not started tonight: %d SDS jobs were in process when the run started, the cap is %d%s", j.InProcessAtStart, j.ConcurrencyCap, next)
	case nightly.CarryBudget:
		return fmt.Sprintf("not started tonight: the job budget (%d in any 24 hours) was all given out: %d jobs were started in the 24 hours before the run and %d were scheduled tonight%s",
			j.Budget, j.InWindowAtStart, scheduled, next)
	case nightly.CarryHorizon:
		return fmt.Sprintf("not started tonight: the job budget (%d in any 24 hours; %d were started in the 24 hours before the run, %d scheduled tonight) has room for it only at %s, when earlier jobs leave the window, later than the %g hours a run waits%s",
			j.Budget, j.InWindowAtStart, scheduled, j.BudgetFreesAt.UTC().Format(time.RFC3339), j.HorizonHours, next)
	}
	// The plan carried nothing over: the budget and the cap had room.
	return fmt.Sprintf("not backed up tonight, though the plan carried nothing over (%d of the job budget of %d used, %d of %d in process): it was not found in need of a backup when the run planned; its last error says what happened since",
		j.InWindowAtStart, j.Budget, j.InProcessAtStart, j.ConcurrencyCap)
}

// statusRank orders a report's data sources: what needs attention first.
func statusRank(status string) int {
	for i, s := range []string{StatusFailed, StatusNeedsKey, StatusThrottled, StatusSkipped, nightly.ReportCarriedOver, StatusArchived, nightly.ReportUpToDate, nightly.ReportExcluded} {
		if s == status {
			return i
		}
	}
	return 99
}

// runFilter is the deploy-time filter with the run's own patterns.
func (s *Service) runFilter(input json.RawMessage) nightly.Filter {
	f := s.cfg.Filter
	var ev discoverEvent
	if len(input) > 0 && json.Unmarshal(input, &ev) == nil {
		f.Include = append(append([]string(nil), f.Include...), ev.Include...)
		f.Exclude = append(append([]string(nil), f.Exclude...), ev.Exclude...)
	}
	if f.Validate() != nil {
		return s.cfg.Filter
	}
	return f
}

// keyParam matches a key in a URL's query, which a service text may echo.
var keyParam = regexp.MustCompile(`(?i)((?:^|[?&\s"'])key=)[^&\s"']+`)

// clean bounds a text for the report and removes any key= query value:
// the functions redact the master key where they meet it, and this keeps
// one that slipped through (an older catalog record, a cause from
// elsewhere) out of S3 and mail.
func clean(text string, n int) string {
	return truncate(keyParam.ReplaceAllString(text, "${1}REDACTED"), n)
}

// summary is the night's mail: a subject of at most 100 characters and a
// short text naming every failed data source.
func summary(rep nightly.Report, where string) (subject, text string) {
	c := rep.Counts
	day := rep.StartedAt.UTC().Format(time.DateOnly)
	if rep.Outcome == nightly.OutcomeFailed {
		// The subject names what failed: the run's error, or the data
		// sources, as many as fit.
		subject = fmt.Sprintf("sdsops nightly %s FAILED:", day)
		if rep.RunError != nil {
			subject += " " + rep.RunError.Error
		}
		for _, e := range rep.DataSources {
			if e.Status != StatusFailed {
				continue
			}
			next := fmt.Sprintf(" %s (%s)", e.DataSourceName, e.Error)
			if len(subject)+len(next) > 96 {
				subject += " …"
				break
			}
			subject += next
		}
	} else {
		subject = fmt.Sprintf("sdsops nightly %s OK: %d archived, %d up to date, %d carried over", day, c.Archived, c.UpToDate, c.CarriedOver)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Nightly run %s (%s): %s.\n\n", rep.Execution, rep.StartedAt.UTC().Format(time.RFC3339), rep.Outcome)
	if rep.RunError != nil {
		fmt.Fprintf(&b, "The run failed: %s: %s\n\n", rep.RunError.Error, truncate(rep.RunError.Cause, 1000))
	}
	fmt.Fprintf(&b, "Seen %d, up to date %d, archived %d, failed %d, carried over %d, needs a key %d, excluded %d, past the RPO %d.\n",
		c.Seen, c.UpToDate, c.Archived, c.Failed, c.CarriedOver, c.NeedsKey, c.Excluded, c.PastRPO)
	fmt.Fprintf(&b, "SDS jobs: %d started tonight; %d of the budget's %d were used in the 24 hours before the run.\n",
		rep.Jobs.StartedTonight, rep.Jobs.InWindowAtStart, rep.Jobs.Budget)
	if r := rep.Retention; r != nil && r.Enabled {
		fmt.Fprintf(&b, "Retention (keep %d versions, %d days): %d archives deleted, %d protected.\n", r.KeepVersions, r.KeepDays, len(r.Deleted), r.ProtectedTotal)
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  retention error: %s\n", truncate(e, 300))
		}
	}
	shown := 0
	for _, e := range rep.DataSources {
		if e.Status != StatusFailed && e.Status != StatusNeedsKey {
			continue
		}
		if shown == 50 {
			b.WriteString("  … more in the report\n")
			break
		}
		if shown == 0 {
			b.WriteString("\nNeeds attention:\n")
		}
		shown++
		fmt.Fprintf(&b, "  %s %s/%s %s: %s\n", e.Status, e.AccessID, e.DataSourceName, e.Error, truncate(e.Reason, 300))
	}
	todo := "README.md#runbook"
	if rep.Outcome != nightly.OutcomeSucceeded {
		// The entry that reads a failed night, then each error type's own.
		todo = "README.md#a-nights-summary-says-failed"
	}
	fmt.Fprintf(&b, "\nReport: %s\nWhat to do: %s\n", where, todo)
	return truncate(subject, 100), b.String()
}

// heartbeat prints the nightly run's heartbeat (EMF, as the other
// metrics of discover), first thing, so that every run that starts puts
// one whatever happens next.
func (s *Service) heartbeat(at time.Time) {
	line, err := nightly.HeartbeatLine(cmp.Or(s.cfg.StackName, nightly.DefaultStackName), at)
	if err != nil {
		s.log.Error("heartbeat not printed: the heartbeat alarm will fire", slog.String("error", err.Error()))
		return
	}
	fmt.Fprintf(s.dep.Metrics, "%s\n", line)
}
