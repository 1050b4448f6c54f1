package sdsemu

import (
	"strconv"
	"time"
)

// Data strings of the data source information documents (AtomPub service document and OData
// JSON), which differ from the REST envelope's.
const (
	infoCopyright  = "© 2011 Microsoft and its suppliers.  This API and any results cannot be used or accessed without Microsoft’s express written permission."
	nsApp          = "http://www.w3.org/2007/app"
	nsAtom         = "http://www.w3.org/2005/Atom"
	nsBsi          = "http://schemas.microsoft.com/bing/spatial/2010/11/odata"
	contentAtomSvc = "application/atomsvc+xml"
)

// infoEntry is one workspace of the service document: a data source, or with showAllVersions
// one version of it.
type infoEntry struct {
	ds      DataSource
	version Version
	// versioned entries carry the showAllVersions attributes and the job ID.
	versioned bool
	staging   bool
	active    bool
}

// infoEntries lists the published version of each data source, or every version of one when
// allVersions is set: published, staged, then prior versions newest first.
func infoEntries(dss []DataSource, allVersions bool) []infoEntry {
	var out []infoEntry
	for _, d := range dss {
		// A data source created by a staged load has no published version yet.
		published := d.Published.JobID != ""
		if !allVersions {
			if published || d.Staged == nil {
				out = append(out, infoEntry{ds: d, version: d.Published})
			} else {
				out = append(out, infoEntry{ds: d, version: *d.Staged, staging: true})
			}
			continue
		}
		if published {
			out = append(out, infoEntry{ds: d, version: d.Published, versioned: true, active: true})
		}
		if d.Staged != nil {
			out = append(out, infoEntry{ds: d, version: *d.Staged, versioned: true, staging: true})
		}
		for _, v := range d.Prior {
			out = append(out, infoEntry{ds: d, version: v, versioned: true})
		}
	}
	return out
}

// isPublic: a staged version has never been published, so it is never public.
func (e infoEntry) isPublic() bool { return e.ds.IsPublic && !e.staging }

func atomDate(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func collectionURL(base string, d DataSource) string {
	return dataSourceURL(base, d.AccessID, d.Name) + "/" + d.EntityTypeName
}

// infoAtom renders the AtomPub service document.
func infoAtom(base string, entries []infoEntry) []byte {
	x := newXMLWriter()
	x.start("app:service", "xmlns:app", nsApp, "xmlns:atom", nsAtom, "xmlns:bsi", nsBsi)
	x.elem("bsi:copyright", infoCopyright)
	for _, e := range entries {
		public := strconv.FormatBool(e.isPublic())
		if e.versioned {
			dateAttr := "bsi:updated"
			if e.staging {
				dateAttr = "bsi:uploaded"
			}
			x.start("app:workspace",
				"bsi:isStagingDataSource", strconv.FormatBool(e.staging),
				"bsi:isActive", strconv.FormatBool(e.active),
				"bsi:isPublic", public,
				dateAttr, atomDate(e.version.Updated))
		} else {
			x.start("app:workspace", "bsi:updated", atomDate(e.version.Updated), "bsi:isPublic", public)
		}
		x.elem("atom:title", e.ds.Name)
		if e.versioned {
			x.elem("atom:jobId", e.version.JobID)
		}
		x.start("app:collection", "app:href", collectionURL(base, e.ds))
		x.elem("atom:title", e.ds.EntityTypeName)
		x.end("app:collection")
		x.end("app:workspace")
	}
	x.end("app:service")
	return x.bytes()
}

// OData JSON documents. IsPublic is a string in the service's information responses.
type odataList struct {
	D struct {
		Copyright   string      `json:"Copyright"`
		DataSources []odataItem `json:"DataSources"`
	} `json:"d"`
}

type odataItem struct {
	Name                string   `json:"Name"`
	IsStagingDataSource string   `json:"IsStagingDataSource,omitempty"`
	IsActive            string   `json:"IsActive,omitempty"`
	IsPublic            string   `json:"IsPublic"`
	Updated             string   `json:"Updated,omitempty"`
	Uploaded            string   `json:"Uploaded,omitempty"`
	JobID               string   `json:"JobId,omitempty"`
	EntitySets          []string `json:"EntitySets"`
}

type odataSingle struct {
	D struct {
		Copyright  string   `json:"Copyright"`
		Name       string   `json:"Name"`
		IsPublic   string   `json:"IsPublic"`
		Updated    string   `json:"Updated"`
		EntitySets []string `json:"EntitySets"`
	} `json:"d"`
}

func (e infoEntry) odata() odataItem {
	it := odataItem{
		Name:       e.ds.Name,
		IsPublic:   strconv.FormatBool(e.isPublic()),
		EntitySets: []string{e.ds.EntityTypeName},
	}
	if e.staging {
		it.Uploaded = jsonDate(e.version.Updated)
	} else {
		it.Updated = jsonDate(e.version.Updated)
	}
	if e.versioned {
		it.IsStagingDataSource = strconv.FormatBool(e.staging)
		it.IsActive = strconv.FormatBool(e.active)
		it.JobID = e.version.JobID
	}
	return it
}

// infoJSON renders the OData JSON document: a single data source as the documented object, a
// list (all data sources, or all versions of one, which the docs do not show) as DataSources.
func infoJSON(entries []infoEntry, single bool) []byte {
	if single {
		var doc odataSingle
		e := entries[0].odata()
		doc.D.Copyright = infoCopyright
		doc.D.Name, doc.D.IsPublic, doc.D.Updated, doc.D.EntitySets = e.Name, e.IsPublic, e.Updated, e.EntitySets
		return encodeJSON(doc)
	}
	var doc odataList
	doc.D.Copyright = infoCopyright
	doc.D.DataSources = []odataItem{}
	for _, e := range entries {
		doc.D.DataSources = append(doc.D.DataSources, e.odata())
	}
	return encodeJSON(doc)
}
