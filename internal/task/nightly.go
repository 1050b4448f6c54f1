package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
)

// The nightly run: discover plans it, the state machine runs one nested
// backup per scheduled data source, record writes each outcome to the
// catalog. Discover, Record and Inventory need the catalog (NeedCatalog).

// SecretReader reads a secret's value (the key overrides map).
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ScheduledItem is one data source the night backs up: only what the
// state machine needs, so that 500 of them stay far below Step Functions'
// 256 KB payload limit (about 200 bytes each).
type ScheduledItem struct {
	AccessID          string `json:"accessId"`
	DataSourceName    string `json:"dataSourceName"`
	MasterKeySecretID string `json:"masterKeySecretId"`
	// JobID is the published version planned; the backup archives exactly it.
	JobID string `json:"jobId"`
	// NotBefore (RFC 3339) is set when the item must wait for budget.
	NotBefore string `json:"notBefore,omitempty"`
}

// DiscoverResult is discover's output.
type DiscoverResult struct {
	Items        []ScheduledItem `json:"items"`
	Concurrency  int             `json:"concurrency"`
	RunStartedAt string          `json:"runStartedAt"`
	Seen         int             `json:"seen"`
	UpToDate     int             `json:"upToDate"`
	CarriedOver  int             `json:"carriedOver"`
	NeedsKey     int             `json:"needsKey"`
	PastRPO      int             `json:"pastRpo"`
	// DamagedRecords are the S3 keys of catalog records that could not be
	// read: their data sources are planned as new, and the backup's record
	// step replaces each, keeping the damaged object aside.
	DamagedRecords []string `json:"damagedRecords"`
	// Jobs is the SDS job budget as the plan found it (for the report).
	Jobs nightly.JobUse `json:"jobs"`
	// Plan is the whole decision, in a dry run only.
	Plan *PlanView `json:"plan,omitempty"`
}

// PlanView is a dry run's account of the plan: the limits and what counted
// against them, and every data source with what tonight would do with it.
type PlanView struct {
	Budget          int            `json:"budget"`
	Concurrency     int            `json:"concurrency"`
	RPOHours        float64        `json:"rpoHours"`
	JobsInWindow    int            `json:"jobsInWindow"`
	OwnJobsInWindow int            `json:"ownJobsInWindow"`
	InProcess       int            `json:"inProcess"`
	Items           []PlanViewItem `json:"items"`
}

// PlanViewItem is one discovered data source in a PlanView. Action is
// "backup" (scheduled, NotBefore when it must wait for budget),
// "carry-over" (no budget tonight) or "none" (its State says why).
type PlanViewItem struct {
	AccessID       string  `json:"accessId"`
	DataSourceName string  `json:"dataSourceName"`
	Version        string  `json:"version"`
	State          string  `json:"state"`
	Action         string  `json:"action"`
	StalenessHours float64 `json:"stalenessHours"`
	NotBefore      string  `json:"notBefore,omitempty"`
}

func planView(p nightly.Plan) *PlanView {
	v := &PlanView{Budget: p.Limits.Budget, Concurrency: p.Concurrency, RPOHours: p.Limits.RPO.Hours(),
		JobsInWindow: p.JobsInWindow, OwnJobsInWindow: p.OwnJobsInWindow, InProcess: p.InProcess, Items: []PlanViewItem{}}
	scheduled := map[string]nightly.Item{}
	for _, it := range p.Scheduled {
		scheduled[it.ID.Key()] = it
	}
	carried := map[string]bool{}
	for _, it := range p.CarriedOver {
		carried[it.ID.Key()] = true
	}
	for _, it := range p.Items {
		vi := PlanViewItem{AccessID: it.ID.AccessID, DataSourceName: it.ID.Name, Version: it.Version, State: string(it.State),
			Action: "none", StalenessHours: it.Staleness.Round(time.Minute).Hours()}
		if s, ok := scheduled[it.ID.Key()]; ok {
			vi.Action = "backup"
			if s.NotBefore.After(p.Now) {
				vi.NotBefore = s.NotBefore.UTC().Format(time.RFC3339)
			}
		} else if carried[it.ID.Key()] {
			vi.Action = "carry-over"
		}
		v.Items = append(v.Items, vi)
	}
	return v
}

// discoverEvent may narrow the deploy-time filter for one run. DryRun
// plans without recording anything (catalog, metrics): the answer then
// carries the whole plan (`sdsops night --dry-run`).
type discoverEvent struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	DryRun  bool     `json:"dryRun,omitempty"`
}

// infoParallel bounds concurrent data source information requests.
const infoParallel = 8

// Discover lists the account's data sources and their published versions,
// plans the night within the job limits, records what it saw in the
// catalog and returns the data sources to back up.
func (s *Service) Discover(ctx context.Context, raw []byte) (any, error) {
	var ev discoverEvent
	var err error
	if len(strings.TrimSpace(string(raw))) > 0 && strings.TrimSpace(string(raw)) != "null" {
		err = decodeStrict(raw, &ev)
	}
	// The heartbeat before anything can fail: it says a run started,
	// whatever happens next (a failure raises NightlyFailedAlarm). A dry
	// run is no run.
	if !ev.DryRun {
		s.heartbeat(s.now().UTC())
	}
	if err != nil {
		return nil, err
	}
	filter := s.cfg.Filter
	filter.Include = append(append([]string(nil), filter.Include...), ev.Include...)
	filter.Exclude = append(append([]string(nil), filter.Exclude...), ev.Exclude...)
	if err := filter.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	overrides, err := s.overrides(ctx)
	if err != nil {
		return nil, err
	}
	var sources []nightly.Source
	var jobs []sds.Job
	err = s.withSDS(ctx, s.cfg.MasterKeySecretID, func(c *sds.Client) error {
		list, err := c.DataSources(ctx)
		if err != nil {
			return err
		}
		// A restore drill's scratch data source is no one's data: it is
		// neither backed up nor catalogued.
		list = slices.DeleteFunc(list, func(d sds.DataSourceInfo) bool { return drill.IsScratch(d.Name) })
		if jobs, err = c.ListJobs(ctx); err != nil {
			return err
		}
		sources, err = publishedVersions(ctx, c, list)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range sources {
		sources[i].KeyRef = keyRef(s.secretFor(overrides, sources[i].ID()))
	}
	recs, damaged, err := s.dep.Catalog.List(ctx)
	if err != nil {
		return nil, catalogFailure(err)
	}
	now := s.now().UTC()
	plan, err := nightly.Make(nightly.Input{Now: now, Sources: sources, Records: recs, Jobs: jobs, Filter: filter, Limits: s.cfg.Limits})
	if err != nil {
		return nil, invalid("%v", err)
	}
	if !ev.DryRun {
		if err := s.observe(ctx, &plan, recs, damaged); err != nil {
			return nil, err
		}
		s.metrics(ctx, now, append(plan.Metrics(), nightly.Metric{Name: nightly.MetricDamagedRecords, Unit: "Count", Value: float64(len(damaged))})...)
	}
	res := DiscoverResult{Items: []ScheduledItem{}, Concurrency: max(1, plan.Concurrency), RunStartedAt: now.Format(time.RFC3339Nano),
		Seen: len(plan.Items), CarriedOver: len(plan.CarriedOver), PastRPO: plan.PastRPO, DamagedRecords: []string{},
		Jobs: nightly.JobUse{Budget: plan.Limits.Budget, InWindowAtStart: plan.JobsInWindow, ConcurrencyCap: plan.Limits.Concurrency, InProcessAtStart: plan.InProcess,
			CarryCause: plan.Carry, BudgetFreesAt: plan.BudgetFreesAt, HorizonHours: plan.Limits.Horizon.Hours()}}
	for _, d := range damaged {
		res.DamagedRecords = append(res.DamagedRecords, d.Key)
		s.log.WarnContext(ctx, "damaged catalog record: its data source is backed up as if new", slog.String("key", d.Key), slog.String("error", d.Problem))
	}
	for _, it := range plan.Items {
		switch it.State {
		case nightly.UpToDate:
			res.UpToDate++
		case nightly.NeedsKey:
			res.NeedsKey++
		}
	}
	for _, it := range plan.Scheduled {
		si := ScheduledItem{AccessID: it.ID.AccessID, DataSourceName: it.ID.Name, MasterKeySecretID: s.secretFor(overrides, it.ID), JobID: it.Version}
		if it.NotBefore.After(now) {
			si.NotBefore = it.NotBefore.UTC().Format(time.RFC3339)
		}
		res.Items = append(res.Items, si)
	}
	if ev.DryRun {
		// Nothing for a state machine to run: a nightly execution started
		// with dryRun backs up nothing. The plan says what a run would.
		res.Items, res.Plan = []ScheduledItem{}, planView(plan)
		return res, nil
	}
	s.log.InfoContext(ctx, "night planned", slog.Int("seen", res.Seen), slog.Int("scheduled", len(res.Items)),
		slog.Int("carriedOver", res.CarriedOver), slog.Int("jobsInWindow", plan.JobsInWindow), slog.Int("inProcess", plan.InProcess))
	return res, nil
}

// publishedVersions asks for every listed data source's versions.
func publishedVersions(ctx context.Context, c *sds.Client, list []sds.DataSourceInfo) ([]nightly.Source, error) {
	out := make([]nightly.Source, len(list))
	errs := make([]error, len(list))
	sem := make(chan struct{}, infoParallel)
	var wg sync.WaitGroup
	for i, d := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			infos, err := c.DataSourceInfo(ctx, sds.DataSource{AccessID: d.AccessID, Name: d.Name}, true)
			if err == nil {
				out[i], err = nightly.Published(infos)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// observe writes what discovery saw into every record but the damaged
// ones, which only the record step replaces (keeping them aside), then the
// index once, listing the damaged records.
func (s *Service) observe(ctx context.Context, plan *nightly.Plan, recs []catalog.Record, damaged []catalog.Damaged) error {
	byKey := make(map[string]catalog.Record, len(recs))
	for _, r := range recs {
		byKey[r.ID().Key()] = r
	}
	skip := make(map[string]bool, len(damaged))
	for _, d := range damaged {
		skip[catalog.ID{AccessID: d.AccessID, Name: d.Name}.Key()] = true
	}
	written := make([]catalog.Record, len(plan.Items))
	errs := make([]error, len(plan.Items))
	sem := make(chan struct{}, infoParallel)
	var wg sync.WaitGroup
	for i, it := range plan.Items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if cur, ok := byKey[it.ID.Key()]; ok {
				written[i], errs[i] = s.dep.Catalog.UpdateFrom(ctx, cur, observeAndRevive(plan, it))
			} else if !skip[it.ID.Key()] {
				written[i], errs[i] = s.dep.Catalog.UpdateRecord(ctx, it.ID, observeAndRevive(plan, it))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return catalogFailure(err)
	}
	written = slices.DeleteFunc(written, func(r catalog.Record) bool { return r.AccessID == "" })
	if err := s.dep.Catalog.UpdateIndex(ctx, written...); err != nil {
		// The records are right; the next write carrying them fixes the index.
		s.log.WarnContext(ctx, "catalog index not updated", slog.String("error", err.Error()))
	}
	if err := s.dep.Catalog.ReportDamaged(ctx, damaged); err != nil {
		s.log.WarnContext(ctx, "damaged records not listed in the catalog index", slog.String("error", err.Error()))
	}
	return nil
}

// overrides reads the per-data-source secret map; none configured is empty.
func (s *Service) overrides(ctx context.Context) (map[string]string, error) {
	if s.cfg.KeyOverridesSecretID == "" {
		return nil, nil
	}
	out, err := s.dep.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &s.cfg.KeyOverridesSecretID})
	if err != nil {
		return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("key overrides secret %q: %v", s.cfg.KeyOverridesSecretID, err), Err: err}
	}
	var m map[string]string
	if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &m) != nil {
		return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("key overrides secret %q: want a JSON object of \"accessId/name\" or \"name\" to secret id", s.cfg.KeyOverridesSecretID)}
	}
	lower := make(map[string]string, len(m))
	for k, v := range m {
		if strings.TrimSpace(v) == "" {
			return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("key overrides secret %q: empty secret id for %q", s.cfg.KeyOverridesSecretID, k)}
		}
		lower[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return lower, nil
}

// secretFor: an override for accessId/name, else for the name, else the
// default secret.
func (s *Service) secretFor(overrides map[string]string, id catalog.ID) string {
	if secret, ok := overrides[id.Key()]; ok {
		return secret
	}
	if secret, ok := overrides[strings.ToLower(id.Name)]; ok {
		return secret
	}
	return s.cfg.MasterKeySecretID
}

// keyRef names a key source in the catalog: the secret id, never the key.
func keyRef(secretID string) string { return "secret:" + secretID }
