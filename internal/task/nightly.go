package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
)

// The nightly run: discover plans it, the state machine runs one nested
// backup per scheduled data source, record writes each outcome to the
// catalog. This file touches the rest of the package only through
// Runner.withSDS, Runner.Handler, NewRunnerFromEnv and the error types.

// NightlyConfig is the configuration of discover, record and inventory.
type NightlyConfig struct {
	// DefaultSecretID serves every data source no override names; it also
	// lists the account (MASTER_KEY_SECRET_ID).
	DefaultSecretID string
	// OverridesSecretID names a secret holding a JSON object from
	// "accessId/name" or "name" (case-insensitive) to the secret id of that
	// data source's master key (KEY_OVERRIDES_SECRET_ID; optional).
	OverridesSecretID string
	Bucket            string // ARCHIVE_BUCKET: archives and catalog
	ArchivePrefix     string // ARCHIVE_PREFIX
	CatalogPrefix     string // CATALOG_PREFIX: "" puts the catalog at catalog/v1/
	Limits            nightly.Limits
	Filter            nightly.Filter
}

// SecretReader reads a secret's value (the overrides map).
type SecretReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Nightly runs discover, record and inventory.
type Nightly struct {
	r       *Runner
	cfg     NightlyConfig
	store   *catalog.Store
	objects ObjectLister
	secrets SecretReader
	now     func() time.Time
	metrics io.Writer // receives the EMF line
}

// NewNightly wires the nightly functions.
func NewNightly(r *Runner, cfg NightlyConfig, store *catalog.Store, objects ObjectLister, secrets SecretReader, metrics io.Writer) *Nightly {
	return &Nightly{r: r, cfg: cfg, store: store, objects: objects, secrets: secrets, now: time.Now, metrics: metrics}
}

// WithClock sets the clock (tests and simulations).
func (n *Nightly) WithClock(now func() time.Time) *Nightly { n.now = now; return n }

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
}

// discoverEvent may narrow the deploy-time filter for one run.
type discoverEvent struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// infoParallel bounds concurrent data source information requests.
const infoParallel = 8

// Discover lists the account's data sources and their published versions,
// plans the night within the job limits, records what it saw in the
// catalog and returns the data sources to back up.
func (n *Nightly) Discover(ctx context.Context, raw []byte) (any, error) {
	var ev discoverEvent
	if len(strings.TrimSpace(string(raw))) > 0 && strings.TrimSpace(string(raw)) != "null" {
		if err := decodeStrict(raw, &ev); err != nil {
			return nil, err
		}
	}
	filter := n.cfg.Filter
	filter.Include = append(append([]string(nil), filter.Include...), ev.Include...)
	filter.Exclude = append(append([]string(nil), filter.Exclude...), ev.Exclude...)
	if err := filter.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	overrides, err := n.overrides(ctx)
	if err != nil {
		return nil, err
	}
	var sources []nightly.Source
	var jobs []sds.Job
	err = n.r.withSDS(ctx, n.cfg.DefaultSecretID, func(c *sds.Client) error {
		list, err := c.DataSources(ctx)
		if err != nil {
			return err
		}
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
		sources[i].KeyRef = keyRef(n.secretFor(overrides, sources[i].ID()))
	}
	recs, err := n.store.List(ctx)
	if err != nil {
		return nil, &Error{Type: ArchiveUnavailable, Message: err.Error(), Err: err}
	}
	now := n.now().UTC()
	plan, err := nightly.Make(nightly.Input{Now: now, Sources: sources, Records: recs, Jobs: jobs, Filter: filter, Limits: n.cfg.Limits})
	if err != nil {
		return nil, invalid("%v", err)
	}
	if err := n.observe(ctx, &plan, recs); err != nil {
		return nil, err
	}
	if line, err := nightly.EMFLine(nightly.MetricNamespace, now, nil, plan.Metrics()); err == nil {
		fmt.Fprintf(n.metrics, "%s\n", line)
	}
	res := DiscoverResult{Items: []ScheduledItem{}, Concurrency: max(1, plan.Concurrency), RunStartedAt: now.Format(time.RFC3339Nano),
		Seen: len(plan.Items), CarriedOver: len(plan.CarriedOver), PastRPO: plan.PastRPO}
	for _, it := range plan.Items {
		switch it.State {
		case nightly.UpToDate:
			res.UpToDate++
		case nightly.NeedsKey:
			res.NeedsKey++
		}
	}
	for _, it := range plan.Scheduled {
		si := ScheduledItem{AccessID: it.ID.AccessID, DataSourceName: it.ID.Name, MasterKeySecretID: n.secretFor(overrides, it.ID), JobID: it.Version}
		if it.NotBefore.After(now) {
			si.NotBefore = it.NotBefore.UTC().Format(time.RFC3339)
		}
		res.Items = append(res.Items, si)
	}
	n.r.log.InfoContext(ctx, "night planned", slog.Int("seen", res.Seen), slog.Int("scheduled", len(res.Items)),
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

// observe writes what discovery saw into every record, then the index once.
func (n *Nightly) observe(ctx context.Context, plan *nightly.Plan, recs []catalog.Record) error {
	byKey := make(map[string]catalog.Record, len(recs))
	for _, r := range recs {
		byKey[r.ID().Key()] = r
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
				written[i], errs[i] = n.store.UpdateFrom(ctx, cur, observeAndRevive(plan, it))
			} else {
				written[i], errs[i] = n.store.UpdateRecord(ctx, it.ID, observeAndRevive(plan, it))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return &Error{Type: ArchiveUnavailable, Message: "catalog: " + err.Error(), Err: err}
	}
	if err := n.store.UpdateIndex(ctx, written...); err != nil {
		// The records are right; the next write carrying them fixes the index.
		n.r.log.WarnContext(ctx, "catalog index not updated", slog.String("error", err.Error()))
	}
	return nil
}

// overrides reads the per-data-source secret map; none configured is empty.
func (n *Nightly) overrides(ctx context.Context) (map[string]string, error) {
	if n.cfg.OverridesSecretID == "" {
		return nil, nil
	}
	out, err := n.secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &n.cfg.OverridesSecretID})
	if err != nil {
		return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("key overrides secret %q: %v", n.cfg.OverridesSecretID, err), Err: err}
	}
	var m map[string]string
	if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &m) != nil {
		return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("key overrides secret %q: want a JSON object of \"accessId/name\" or \"name\" to secret id", n.cfg.OverridesSecretID)}
	}
	lower := make(map[string]string, len(m))
	for k, v := range m {
		if strings.TrimSpace(v) == "" {
			return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("key overrides secret %q: empty secret id for %q", n.cfg.OverridesSecretID, k)}
		}
		lower[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return lower, nil
}

// secretFor: an override for accessId/name, else for the name, else the
// default secret.
func (n *Nightly) secretFor(overrides map[string]string, id catalog.ID) string {
	if s, ok := overrides[id.Key()]; ok {
		return s
	}
	if s, ok := overrides[strings.ToLower(id.Name)]; ok {
		return s
	}
	return n.cfg.DefaultSecretID
}

// keyRef names a key source in the catalog: the secret id, never the key.
func keyRef(secretID string) string { return "secret:" + secretID }
