package nightly

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// MetricNamespace is the CloudWatch namespace of sdsops's metrics.
const MetricNamespace = "sdsops"

// Metric names, the alarm's among them.
const (
	MetricPastRPO      = "DataSourcesPastRPO"
	MetricMaxStaleness = "MaxStalenessHours"
	MetricScheduled    = "BackupsScheduled"
	MetricCarriedOver  = "BackupsCarriedOver"
	MetricDataSources  = "DataSourcesSeen"
	// MetricDamagedRecords counts the catalog records discovery could not
	// read (their data sources are backed up as if new).
	MetricDamagedRecords = "CatalogRecordsDamaged"
)

// Metric is one value of an Embedded Metric Format line.
type Metric struct {
	Name  string
	Unit  string // CloudWatch unit: "Count", "None", "Seconds", ...
	Value float64
}

// Metrics are the plan's figures for CloudWatch. MetricPastRPO is the one
// the alarm watches.
func (p *Plan) Metrics() []Metric {
	return []Metric{
		{MetricPastRPO, "Count", float64(p.PastRPO)},
		{MetricMaxStaleness, "None", p.MaxStaleness.Hours()},
		{MetricScheduled, "Count", float64(len(p.Scheduled))},
		{MetricCarriedOver, "Count", float64(len(p.CarriedOver))},
		{MetricDataSources, "Count", float64(len(p.Items))},
	}
}

// EMFLine renders metrics as one CloudWatch Embedded Metric Format log line
// (a JSON object, no newline): a Lambda that prints it publishes the
// metrics, with no CloudWatch API call. All dimensions form one dimension
// set.
func EMFLine(namespace string, at time.Time, dims map[string]string, metrics []Metric) ([]byte, error) {
	switch {
	case namespace == "" || len(namespace) > 255:
		return nil, errors.New("nightly: EMF namespace must be 1 to 255 characters")
	case len(metrics) == 0 || len(metrics) > 100:
		return nil, fmt.Errorf("nightly: EMF takes 1 to 100 metrics, not %d", len(metrics))
	case len(dims) > 30:
		return nil, fmt.Errorf("nightly: EMF takes at most 30 dimensions, not %d", len(dims))
	}
	doc := map[string]any{}
	type metricDef struct {
		Name string `json:"Name"`
		Unit string `json:"Unit,omitempty"`
	}
	defs := make([]metricDef, 0, len(metrics))
	names := slices.Sorted(maps.Keys(dims))
	for _, k := range names {
		if k == "" || k == "_aws" || dims[k] == "" {
			return nil, fmt.Errorf("nightly: EMF dimension %q=%q: name and value must not be empty", k, dims[k])
		}
		doc[k] = dims[k]
	}
	for _, m := range metrics {
		if m.Name == "" || m.Name == "_aws" {
			return nil, fmt.Errorf("nightly: EMF metric name %q", m.Name)
		}
		if _, dup := doc[m.Name]; dup {
			return nil, fmt.Errorf("nightly: EMF metric %q repeats a metric or dimension name", m.Name)
		}
		doc[m.Name] = m.Value
		defs = append(defs, metricDef{m.Name, m.Unit})
	}
	if names == nil {
		names = []string{} // an empty dimension set: the metric has no dimensions
	}
	doc["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  namespace,
			"Dimensions": [][]string{names},
			"Metrics":    defs,
		}},
	}
	return json.Marshal(doc)
}
