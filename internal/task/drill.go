package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
)

// Actions of the drill function, one per step of the drill state machine
// that needs more than a nested restore or delete.
const (
	DrillPlan   = "plan"   // leftovers to delete, data sources to drill
	DrillBegin  = "begin"  // room for one drill now? then its scratch name
	DrillLocate = "locate" // does the scratch data source exist?
	DrillFinish = "finish" // check, record, publish the metric
)

// Metrics of the drills (namespace nightly.MetricNamespace).
const (
	MetricDrillsFailed  = "DrillsFailed"
	MetricDrillsSkipped = "DrillsSkipped"
	MetricPastDrillAge  = "DataSourcesPastDrillAge"
)

// Bounds of a drill's reasons in the catalog.
const (
	maxDrillReasonBytes = 500
	maxDrillReasons     = 10
)

// DrillTarget names a data source: one to drill, or a leftover scratch one.
type DrillTarget struct {
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
}

// DrillPlanResult is plan's output.
type DrillPlanResult struct {
	Leftovers    []DrillTarget `json:"leftovers"`
	Items        []DrillTarget `json:"items"`
	RunStartedAt string        `json:"runStartedAt"`
	PastDrillAge int           `json:"pastDrillAge"`
}

// DrillBeginResult is begin's output: start, with the scratch name, or
// the reasons there is no room now.
type DrillBeginResult struct {
	Start       bool     `json:"start"`
	ScratchName string   `json:"scratchName,omitempty"`
	Reasons     []string `json:"reasons,omitempty"`
}

// DrillLocateResult is locate's output.
type DrillLocateResult struct {
	Found    bool   `json:"found"`
	AccessID string `json:"accessId,omitempty"`
}

// failureInfo is a Catch's error output.
type failureInfo struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// drillItem is the state of one drill as the state machine carries it.
type drillItem struct {
	AccessID       string            `json:"accessId"`
	DataSourceName string            `json:"dataSourceName"`
	Begin          *DrillBeginResult `json:"begin"`
	Restore        *struct {
		ArchiveKey           string `json:"archiveKey"`
		EntityCount          int64  `json:"entityCount"`
		ProcessedEntityCount int64  `json:"processedEntityCount"`
		FailedEntityCount    int64  `json:"failedEntityCount"`
	} `json:"restore"`
	Failure       *failureInfo       `json:"failure"`
	Scratch       *DrillLocateResult `json:"scratch"`
	DeleteFailure *failureInfo       `json:"deleteFailure"`
}

type drillEvent struct {
	Action         string     `json:"action"`
	AccessID       string     `json:"accessId"`
	DataSourceName string     `json:"dataSourceName"`
	ScratchName    string     `json:"scratchName"`
	Item           *drillItem `json:"item"`
	// DataSources (plan): drill these now instead of those drilled
	// longest ago.
	DataSources *[]DrillTarget `json:"dataSources"`
}

// DrillResult is finish's output, one drill of the run.
type DrillResult struct {
	AccessID       string   `json:"accessId"`
	DataSourceName string   `json:"dataSourceName"`
	Outcome        string   `json:"outcome"`
	ArchiveKey     string   `json:"archiveKey,omitempty"`
	Jobs           int      `json:"jobs"`
	Reasons        []string `json:"reasons,omitempty"`
}

// Drill runs one step of a restore drill (see the drill package).
func (s *Service) Drill(ctx context.Context, raw []byte) (any, error) {
	var ev drillEvent
	if err := s.decodeCatalogEvent(raw, "drill", &ev); err != nil {
		return nil, err
	}
	switch ev.Action {
	case DrillPlan:
		if ev.DataSources != nil {
			for _, d := range *ev.DataSources {
				if err := validateDataSource(d.AccessID, d.DataSourceName); err != nil {
					return nil, err
				}
				if drill.IsScratch(d.DataSourceName) {
					return nil, invalid("%s is a scratch data source, not one to drill", d.DataSourceName)
				}
			}
		}
		return s.drillPlan(ctx, ev.DataSources)
	case DrillBegin:
		if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
			return nil, err
		}
		return s.drillBegin(ctx, catalog.ID{AccessID: ev.AccessID, Name: ev.DataSourceName})
	case DrillLocate:
		if !drill.IsScratch(ev.ScratchName) {
			return nil, invalid("field \"scratchName\" %q is not a scratch data source's name (%s...)", truncate(ev.ScratchName, 60), drill.ScratchPrefix)
		}
		return s.drillLocate(ctx, ev.ScratchName)
	case DrillFinish:
		if ev.Item == nil {
			return nil, invalid("drill finish needs the drill's item")
		}
		if err := validateDataSource(ev.Item.AccessID, ev.Item.DataSourceName); err != nil {
			return nil, err
		}
		return s.drillFinish(ctx, *ev.Item)
	}
	return nil, invalid("field \"action\" must be %s, %s, %s or %s, got %q", DrillPlan, DrillBegin, DrillLocate, DrillFinish, truncate(ev.Action, 40))
}

// drillPlan finds the scratch data sources interrupted drills left (a
// scratch name with its mark), drops the marks of those already gone, and
// picks the data sources to drill, tried longest ago first.
func (s *Service) drillPlan(ctx context.Context, named *[]DrillTarget) (*DrillPlanResult, error) {
	now := s.now().UTC()
	list, err := s.dataSources(ctx)
	if err != nil {
		return nil, err
	}
	marks, err := s.dep.Catalog.ScratchMarks(ctx)
	if err != nil {
		return nil, catalogFailure(err)
	}
	res := &DrillPlanResult{Leftovers: []DrillTarget{}, Items: []DrillTarget{}, RunStartedAt: now.Format(time.RFC3339Nano)}
	for _, m := range marks {
		if d, ok := byName(list, m.Name); ok {
			res.Leftovers = append(res.Leftovers, DrillTarget{AccessID: d.AccessID, DataSourceName: d.Name})
			continue
		}
		if err := s.dep.Catalog.UnmarkScratch(ctx, m.Name); err != nil {
			return nil, catalogFailure(err)
		}
	}
	recs, _, err := s.dep.Catalog.List(ctx)
	if err != nil {
		return nil, catalogFailure(err)
	}
	if named != nil {
		res.Items = append(res.Items, *named...)
	} else {
		for _, id := range drill.Next(recs, s.cfg.Drill.PerRun) {
			res.Items = append(res.Items, DrillTarget{AccessID: id.AccessID, DataSourceName: id.Name})
		}
	}
	res.PastDrillAge = drill.PastAge(recs, now, s.cfg.Drill.MaxAge)
	s.metrics(ctx, now, nightly.Metric{Name: MetricPastDrillAge, Unit: "Count", Value: float64(res.PastDrillAge)})
	s.log.InfoContext(ctx, "drills planned", slog.Int("items", len(res.Items)), slog.Int("leftovers", len(res.Leftovers)), slog.Int("pastDrillAge", res.PastDrillAge))
	return res, nil
}

// drillBegin checks there is room for one drill now: a free data source
// slot, the drill's jobs within the job budget the nightly run also draws
// on, a job under the concurrency cap. Then it marks the scratch data
// source before anything is loaded into it.
func (s *Service) drillBegin(ctx context.Context, id catalog.ID) (*DrillBeginResult, error) {
	now := s.now().UTC()
	list, jobs, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	recs, _, err := s.dep.Catalog.List(ctx)
	if err != nil {
		return nil, catalogFailure(err)
	}
	if why := drill.Room(len(list), nightly.Used(now, jobs, recs), s.cfg.Limits); len(why) > 0 {
		return &DrillBeginResult{Reasons: why}, nil
	}
	name := drill.ScratchName(id, now)
	if err := s.dep.Catalog.MarkScratch(ctx, catalog.ScratchMark{Name: name, Source: id, At: now}); err != nil {
		return nil, catalogFailure(err)
	}
	return &DrillBeginResult{Start: true, ScratchName: name}, nil
}

func (s *Service) drillLocate(ctx context.Context, name string) (*DrillLocateResult, error) {
	list, err := s.dataSources(ctx)
	if err != nil {
		return nil, err
	}
	d, ok := byName(list, name)
	return &DrillLocateResult{Found: ok, AccessID: d.AccessID}, nil
}

// drillFinish judges the drill, counts the SDS jobs it started (from the
// job list: the load and the delete of its scratch data source), records
// it as the data source's last drill, removes the scratch mark once the
// data source is gone and publishes the drill's metric.
func (s *Service) drillFinish(ctx context.Context, it drillItem) (*DrillResult, error) {
	now := s.now().UTC()
	res := &DrillResult{AccessID: it.AccessID, DataSourceName: it.DataSourceName}
	switch {
	case it.Begin == nil || !it.Begin.Start:
		res.Outcome = catalog.DrillSkipped
		if it.Begin != nil {
			res.Reasons = it.Begin.Reasons
		}
	case it.Failure != nil && it.Failure.Error == DataSourceLimit:
		// The slot begin saw free was taken before the load: no room,
		// as when begin finds none.
		res.Outcome = catalog.DrillSkipped
		res.Reasons = []string{"no free data source slot: SDS refused the load (" + failureText(it.Failure) + ")"}
	case it.Failure != nil:
		res.Outcome = catalog.DrillFailed
		res.Reasons = []string{failureText(it.Failure)}
	case it.Restore == nil:
		res.Outcome = catalog.DrillFailed
		res.Reasons = []string{"the restore reported no load"}
	default:
		res.ArchiveKey = it.Restore.ArchiveKey
		res.Reasons = drill.Load{EntityCount: it.Restore.EntityCount, Processed: it.Restore.ProcessedEntityCount, Failed: it.Restore.FailedEntityCount}.Check()
		res.Outcome = catalog.DrillSucceeded
		if len(res.Reasons) > 0 {
			res.Outcome = catalog.DrillFailed
		}
	}
	if it.Begin != nil && it.Begin.Start {
		scratch := it.Begin.ScratchName
		if !drill.IsScratch(scratch) {
			return nil, invalid("drill finish: %q is not a scratch data source's name", truncate(scratch, 60))
		}
		list, jobs, err := s.account(ctx)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			if strings.EqualFold(strings.TrimSpace(j.Name), scratch) {
				res.Jobs++
			}
		}
		if _, left := byName(list, scratch); left {
			why := "the scratch data source " + scratch + " was not deleted; the next drill run deletes it"
			if it.DeleteFailure != nil {
				why += " (" + failureText(it.DeleteFailure) + ")"
			}
			res.Outcome, res.Reasons = catalog.DrillFailed, append(res.Reasons, why)
		} else if err := s.dep.Catalog.UnmarkScratch(ctx, scratch); err != nil {
			return nil, catalogFailure(err)
		}
	}
	if len(res.Reasons) > maxDrillReasons {
		res.Reasons = res.Reasons[:maxDrillReasons]
	}
	id := catalog.ID{AccessID: it.AccessID, Name: it.DataSourceName}
	_, err := s.dep.Catalog.Update(ctx, id, func(r *catalog.Record) error {
		r.Drilled(catalog.Drill{At: now, ArchiveKey: res.ArchiveKey, Jobs: res.Jobs, Outcome: res.Outcome, Reasons: res.Reasons})
		return nil
	})
	if err != nil && !errors.Is(err, catalog.ErrIndexNotUpdated) {
		return nil, catalogFailure(err)
	}
	switch res.Outcome {
	case catalog.DrillSkipped:
		s.metrics(ctx, now, nightly.Metric{Name: MetricDrillsSkipped, Unit: "Count", Value: 1})
	case catalog.DrillFailed:
		s.metrics(ctx, now, nightly.Metric{Name: MetricDrillsFailed, Unit: "Count", Value: 1})
	default:
		s.metrics(ctx, now, nightly.Metric{Name: MetricDrillsFailed, Unit: "Count", Value: 0})
	}
	s.log.InfoContext(ctx, "drill finished", slog.String("dataSource", id.String()), slog.String("outcome", res.Outcome), slog.Int("jobs", res.Jobs))
	return res, nil
}

// metrics prints one Embedded Metric Format line.
func (s *Service) metrics(ctx context.Context, at time.Time, m ...nightly.Metric) {
	line, err := nightly.EMFLine(nightly.MetricNamespace, at, nil, m)
	if err != nil {
		s.log.WarnContext(ctx, "metrics not published", slog.String("error", err.Error()))
		return
	}
	fmt.Fprintf(s.dep.Metrics, "%s\n", line)
}

func failureText(f *failureInfo) string {
	msg := f.Error
	if f.Cause != "" {
		msg += ": " + f.Cause
	}
	return truncate(msg, maxDrillReasonBytes)
}

// dataSources lists the account's data sources, with the default master
// key.
func (s *Service) dataSources(ctx context.Context) (list []sds.DataSourceInfo, err error) {
	err = s.withSDS(ctx, "", func(c *sds.Client) (err error) {
		list, err = c.DataSources(ctx)
		return err
	})
	return list, err
}

// account lists the data sources and the jobs of the account of the
// default master key.
func (s *Service) account(ctx context.Context) (list []sds.DataSourceInfo, jobs []sds.Job, err error) {
	err = s.withSDS(ctx, "", func(c *sds.Client) (err error) {
		if list, err = c.DataSources(ctx); err != nil {
			return err
		}
		jobs, err = c.ListJobs(ctx)
		return err
	})
	return list, jobs, err
}

// byName finds a data source of the list by name, as SDS compares names.
func byName(list []sds.DataSourceInfo, name string) (sds.DataSourceInfo, bool) {
	for _, d := range list {
		if strings.EqualFold(d.Name, name) && d.AccessID != "" {
			return d, true
		}
	}
	return sds.DataSourceInfo{}, false
}
