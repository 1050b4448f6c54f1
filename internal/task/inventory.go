package task

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/sds"
)

// Inventory answers "which data sources have a verified archive of their
// current version" from the catalog, and lists one data source's archives
// from their manifests. It is invoked through the API (Lambda proxy) or
// directly (aws lambda invoke) with {"accessId":..,"dataSourceName":..} for
// the archives and {} for the list.

// InventoryEntry is one data source in the list.
type InventoryEntry struct {
	catalog.IndexEntry
	// State: up-to-date, pending (its current version has no verified
	// archive yet), needs-key or deleted.
	State string `json:"state"`
	// StalenessHours: hours since its current version's unarchived state
	// began; 0 when up to date.
	StalenessHours float64 `json:"stalenessHours"`
}

// Inventory is the list's answer.
type Inventory struct {
	Updated     time.Time        `json:"updated,omitzero"`
	DataSources []InventoryEntry `json:"dataSources"`
	// Damaged lists the catalog records that could not be read, by key;
	// their data sources are in DataSources with state "damaged".
	Damaged []catalog.Damaged `json:"damaged"`
}

// ArchiveList is one data source's archives, newest first, each its
// manifest as stored: with verified and restorable (absent, that is
// unknown, in a manifest written before restorability was checked).
type ArchiveList struct {
	AccessID       string            `json:"accessId"`
	DataSourceName string            `json:"dataSourceName"`
	Archives       []json.RawMessage `json:"archives"`
	Truncated      bool              `json:"truncated,omitempty"`
}

// Limits of the archive listing.
const (
	defaultArchives = 50
	maxArchives     = 200
)

type inventoryEvent struct {
	HTTPMethod     string            `json:"httpMethod"`
	PathParameters map[string]string `json:"pathParameters"`
	Query          map[string]string `json:"queryStringParameters"`
	AccessID       string            `json:"accessId"`
	DataSourceName string            `json:"dataSourceName"`
	Limit          int               `json:"limit"`
	// RebuildIndex rebuilds the catalog index from the records before
	// listing (direct invocation only).
	RebuildIndex bool `json:"rebuildIndex"`
}

// Inventory answers a direct invocation or an API Gateway proxy request.
func (s *Service) Inventory(ctx context.Context, raw []byte) (any, error) {
	var ev inventoryEvent
	if err := s.decodeCatalogEvent(raw, "inventory", &ev); err != nil {
		return nil, err
	}
	if ev.HTTPMethod == "" {
		if ev.RebuildIndex {
			if ev.AccessID != "" || ev.DataSourceName != "" {
				return nil, invalid("rebuildIndex lists every data source: give no accessId or dataSourceName")
			}
			if _, err := s.dep.Catalog.RebuildIndex(ctx); err != nil {
				return nil, catalogFailure(err)
			}
		}
		return s.inventory(ctx, ev.AccessID, ev.DataSourceName, ev.Limit)
	}
	accessID, name := ev.PathParameters["accessId"], ev.PathParameters["name"]
	if u, err := url.PathUnescape(name); err == nil {
		name = u
	}
	limit := 0
	if v := ev.Query["limit"]; v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil {
			return proxy(http.StatusBadRequest, map[string]string{"error": InvalidInput, "message": "limit must be a whole number"}), nil
		}
	}
	out, err := s.inventory(ctx, accessID, name, limit)
	if err != nil {
		e := classify(err)
		status := http.StatusBadGateway
		if e.Type == InvalidInput {
			status = http.StatusBadRequest
		}
		return proxy(status, map[string]string{"error": e.Type, "message": e.Message}), nil
	}
	return proxy(http.StatusOK, out), nil
}

func proxy(status int, body any) events.APIGatewayProxyResponse {
	b, _ := json.Marshal(body)
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

func (s *Service) inventory(ctx context.Context, accessID, name string, limit int) (any, error) {
	if accessID == "" && name == "" {
		return s.list(ctx)
	}
	if err := (sds.DataSource{AccessID: accessID, Name: name}).Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	switch {
	case limit == 0:
		limit = defaultArchives
	case limit < 1 || limit > maxArchives:
		return nil, invalid("limit %d outside 1..%d", limit, maxArchives)
	}
	return s.archives(ctx, catalog.ID{AccessID: accessID, Name: name}, limit)
}

func (s *Service) list(ctx context.Context) (Inventory, error) {
	x, err := s.dep.Catalog.Index(ctx)
	if err != nil {
		return Inventory{}, catalogFailure(err)
	}
	now := s.now().UTC()
	out := Inventory{Updated: x.Updated, DataSources: make([]InventoryEntry, 0, len(x.DataSources)), Damaged: []catalog.Damaged{}}
	damaged := make(map[string]bool, len(x.Damaged))
	for _, d := range x.Damaged {
		out.Damaged = append(out.Damaged, d)
		id := catalog.ID{AccessID: d.AccessID, Name: d.Name}
		damaged[id.Key()] = true
		if !slices.ContainsFunc(x.DataSources, func(e catalog.IndexEntry) bool {
			return catalog.ID{AccessID: e.AccessID, Name: e.Name}.Key() == id.Key()
		}) {
			x.DataSources = append(x.DataSources, catalog.IndexEntry{AccessID: d.AccessID, Name: d.Name})
		}
	}
	for _, e := range x.DataSources {
		ie := InventoryEntry{IndexEntry: e, State: "up-to-date"}
		switch {
		case damaged[catalog.ID{AccessID: e.AccessID, Name: e.Name}.Key()]:
			ie.State = "damaged"
		case !e.DeletedAt.IsZero():
			ie.State = "deleted"
		case e.NeedsKey:
			ie.State = "needs-key"
		case !e.PendingSince.IsZero() || e.VerifiedVersion == "":
			ie.State = "pending"
		}
		if ie.State != "up-to-date" && ie.State != "deleted" && !e.PendingSince.IsZero() {
			ie.StalenessHours = float64(now.Sub(e.PendingSince).Round(time.Minute)) / float64(time.Hour)
		}
		out.DataSources = append(out.DataSources, ie)
	}
	return out, nil
}

// archives reads the manifests of a data source's archives, newest first.
// Days are read whole, newest first, until they hold limit archives; only
// then are the archives ordered by finishedAt and cut to limit, so that a
// day's archives (whose keys are in job id order, not in time) are
// compared by when they finished.
func (s *Service) archives(ctx context.Context, id catalog.ID, limit int) (ArchiveList, error) {
	if rec, err := s.dep.Catalog.Get(ctx, id); err == nil {
		id = rec.ID() // the data source's own spelling, as archive keys use it
	} else if !errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrCorrupt) {
		return ArchiveList{}, catalogFailure(err)
	}
	type dated struct {
		raw json.RawMessage
		at  time.Time
	}
	var all []dated
	more, err := s.layout().NewestFirst(ctx, s.dep.Objects, s.cfg.ArchiveBucket, id.AccessID, id.Name, func(_ time.Time, keys []string) (bool, error) {
		for _, k := range keys {
			sm, err := archive.ReadManifest(ctx, s.dep.Objects, s.cfg.ArchiveBucket, k)
			switch {
			case errors.Is(err, archive.ErrNoManifest), errors.Is(err, archive.ErrBadManifest):
				continue // not a manifest sdsops wrote; the list is of readable ones
			case err != nil:
				return false, err
			}
			all = append(all, dated{sm.Raw, sm.FinishedAt})
		}
		return len(all) >= limit, nil
	})
	if err != nil {
		return ArchiveList{}, &Error{Type: ArchiveUnavailable, Message: err.Error(), Err: err}
	}
	slices.SortStableFunc(all, func(a, b dated) int { return b.at.Compare(a.at) })
	out := ArchiveList{AccessID: id.AccessID, DataSourceName: id.Name, Archives: []json.RawMessage{}, Truncated: more}
	if len(all) > limit {
		all, out.Truncated = all[:limit], true
	}
	for _, d := range all {
		out.Archives = append(out.Archives, d.raw)
	}
	return out, nil
}
