package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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
// manifest as stored.
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
	maxManifest     = 1 << 20
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

// archives reads the manifests under the data source's archive prefix.
// Keys hold the job's date (yyyy/mm/dd), so the last keys are the newest.
func (s *Service) archives(ctx context.Context, id catalog.ID, limit int) (ArchiveList, error) {
	if rec, err := s.dep.Catalog.Get(ctx, id); err == nil {
		id = rec.ID() // the data source's own spelling, as archive keys use it
	} else if !errors.Is(err, catalog.ErrNotFound) && !errors.Is(err, catalog.ErrCorrupt) {
		return ArchiveList{}, catalogFailure(err)
	}
	prefix := s.cfg.ArchivePrefix + id.AccessID + "/" + id.Name + "/"
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.dep.Objects, &s3.ListObjectsV2Input{Bucket: &s.cfg.ArchiveBucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return ArchiveList{}, &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("listing %s: %v", prefix, err), Err: err}
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, ".manifest.json") {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	out := ArchiveList{AccessID: id.AccessID, DataSourceName: id.Name, Archives: []json.RawMessage{}}
	if len(keys) > limit {
		keys, out.Truncated = keys[:limit], true
	}
	type dated struct {
		raw json.RawMessage
		at  time.Time
	}
	var all []dated
	for _, k := range keys {
		obj, err := s.dep.Objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.cfg.ArchiveBucket, Key: &k})
		if err != nil {
			return ArchiveList{}, &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("reading %s: %v", k, err), Err: err}
		}
		data, err := io.ReadAll(io.LimitReader(obj.Body, maxManifest))
		obj.Body.Close()
		var m struct {
			FinishedAt time.Time `json:"finishedAt"`
		}
		if err != nil || json.Unmarshal(data, &m) != nil {
			continue // not a manifest sdsops wrote; the list is of readable ones
		}
		all = append(all, dated{data, m.FinishedAt})
	}
	slices.SortStableFunc(all, func(a, b dated) int { return b.at.Compare(a.at) })
	for _, d := range all {
		out.Archives = append(out.Archives, d.raw)
	}
	return out, nil
}
