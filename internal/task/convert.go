package task

import (
	"context"
	"strings"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/conversion"
)

// ConvertEvent is the convert function's event: one archive, named by its
// key or its manifest's, or one page of a backfill of every archive under
// a prefix.
type ConvertEvent struct {
	ManifestKey string `json:"manifestKey"`
	Key         string `json:"key"`
	// AccessID and DataSourceName name a data source: with a key, the
	// archive must be one of its own; without, every archive of it is
	// backfilled.
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
	// Prefix selects a backfill page: the next manifests under Prefix
	// (taken below the archive prefix when it does not start with it)
	// after StartAfter. Results, the previous page's outcomes, are added
	// to Totals.
	Prefix     string            `json:"prefix"`
	StartAfter string            `json:"startAfter"`
	Done       bool              `json:"done"`
	Totals     *BackfillTotals   `json:"totals"`
	Results    []BackfillOutcome `json:"results"`
}

// BackfillTotals counts the outcomes of a backfill so far.
type BackfillTotals struct {
	Converted int `json:"converted"`
	Skipped   int `json:"skipped"` // converted before, outputs in place
	Failed    int `json:"failed"`
	// Failures lists the first maxListedFailures failures.
	Failures []BackfillOutcome `json:"failures"`
}

// BackfillOutcome is one archive's outcome in a backfill.
type BackfillOutcome struct {
	ManifestKey string `json:"manifestKey"`
	Status      string `json:"status"` // Converted, Reused or Failed
	Error       string `json:"error,omitempty"`
	Cause       string `json:"cause,omitempty"`
}

// BackfillPage is a backfill page's result.
type BackfillPage struct {
	ManifestKeys []string       `json:"manifestKeys"`
	StartAfter   string         `json:"startAfter"`
	Done         bool           `json:"done"`
	Totals       BackfillTotals `json:"totals"`
}

const (
	backfillPageSize  = 100
	maxListedFailures = 20
)

// Converter is what the convert function needs of internal/conversion.
type Converter interface {
	Convert(ctx context.Context, manifestKey string) (conversion.Result, error)
	ListManifests(ctx context.Context, prefix, startAfter string, max int) (keys []string, next string, done bool, err error)
	// Layout is the key layout of the archives: every key and prefix of
	// an event is checked against it before anything is read.
	Layout() archive.Layout
}

// Convert turns one archive into GeoJSON and a schema beside it, or
// lists one page of a backfill.
func (s *Service) Convert(ctx context.Context, raw []byte) (any, error) {
	return convert(ctx, s.dep.Converter, raw)
}

func convert(ctx context.Context, conv Converter, raw []byte) (any, error) {
	var ev ConvertEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	var ds string // the data source's folder, below the archive prefix
	if ev.AccessID != "" || ev.DataSourceName != "" {
		if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
			return nil, err
		}
		ds = strings.TrimPrefix(conv.Layout().DataSourcePrefix(ev.AccessID, ev.DataSourceName), conv.Layout().Prefix())
	}
	if ev.Key == "" && ev.ManifestKey == "" {
		switch {
		case ev.Prefix != "" && ds != "":
			return nil, invalid("give either prefix or accessId and dataSourceName, not both")
		case ds != "":
			ev.Prefix = ds
		case ev.Prefix == "":
			return nil, invalid("give manifestKey, key, prefix, or accessId and dataSourceName")
		}
		if _, err := conv.Layout().ListPrefix(ev.Prefix); err != nil {
			return nil, invalid("field \"prefix\": %v", err)
		}
		return backfillPage(ctx, conv, ev)
	}
	if ev.Prefix != "" || ev.StartAfter != "" || ev.Done || ev.Totals != nil || ev.Results != nil {
		return nil, invalid("a backfill (prefix) and one archive (key, manifestKey) are separate requests")
	}
	mkey, err := manifestKeyOf(conv.Layout(), ev)
	if err != nil {
		return nil, err
	}
	res, err := conv.Convert(ctx, mkey)
	if err != nil {
		return nil, err
	}
	status := "Converted"
	if res.Reused {
		status = "Reused"
	}
	out := map[string]any{
		"status":      status,
		"bucket":      res.Bucket,
		"key":         res.Key,
		"manifestKey": res.ManifestKey,
		"geojsonKey":  res.Record.GeoJSON.Key,
		"schemaKey":   res.Record.Schema.Key,
		"conversion":  res.Record,
	}
	if res.Record.GeoParquet != nil {
		out["geoparquetKey"] = res.Record.GeoParquet.Key
	}
	return out, nil
}

// manifestKeyOf checks the key and manifestKey of a conversion of one
// archive and returns the manifest's key. key may name the archive or its
// manifest, manifestKey only a manifest; given both, they must agree; with
// a data source, it must be one of its archives.
func manifestKeyOf(l archive.Layout, ev ConvertEvent) (string, error) {
	var mkey string
	for _, f := range []struct{ field, v string }{{"key", ev.Key}, {"manifestKey", ev.ManifestKey}} {
		if f.v == "" {
			continue
		}
		parse := func(k string) (archive.Ref, error) { r, _, err := l.Parse(k); return r, err }
		if f.field == "manifestKey" {
			parse = l.ParseManifestKey
		}
		r, err := parse(f.v)
		if err != nil {
			return "", invalid("field %q: %v", f.field, err)
		}
		if ev.AccessID != "" && (r.AccessID != ev.AccessID || r.DataSourceName != ev.DataSourceName) {
			return "", invalid("%q is not an archive of %s/%s", truncate(f.v, 300), ev.AccessID, ev.DataSourceName)
		}
		k := l.ManifestKey(r)
		if mkey != "" && k != mkey {
			return "", invalid("key and manifestKey name different archives")
		}
		mkey = k
	}
	return mkey, nil
}

func backfillPage(ctx context.Context, conv Converter, ev ConvertEvent) (BackfillPage, error) {
	p := BackfillPage{Totals: BackfillTotals{Failures: []BackfillOutcome{}}, ManifestKeys: []string{}, StartAfter: ev.StartAfter, Done: ev.Done}
	if ev.Totals != nil {
		p.Totals = *ev.Totals
		if p.Totals.Failures == nil {
			p.Totals.Failures = []BackfillOutcome{}
		}
	}
	for _, o := range ev.Results {
		switch o.Status {
		case "Converted":
			p.Totals.Converted++
		case "Reused":
			p.Totals.Skipped++
		default:
			p.Totals.Failed++
			if len(p.Totals.Failures) < maxListedFailures {
				o.Cause = truncate(o.Cause, 500)
				p.Totals.Failures = append(p.Totals.Failures, o)
			}
		}
	}
	if ev.Done {
		return p, nil
	}
	keys, next, done, err := conv.ListManifests(ctx, ev.Prefix, ev.StartAfter, backfillPageSize)
	if err != nil {
		return p, err
	}
	p.ManifestKeys, p.StartAfter, p.Done = append(p.ManifestKeys, keys...), next, done
	return p, nil
}
