package sds

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// DecodeDataSources decodes a data source information response: the
// AtomPub service document (the service's default) or OData JSON
// ({"d":{...}} for one data source, {"d":{"DataSources":[...]}} for all).
func DecodeDataSources(body []byte) ([]DataSourceInfo, error) {
	switch firstByte(body) {
	case '{':
		return decodeODataJSON(body)
	case '<':
		return decodeAtom(body)
	case 0:
		return nil, decodeErr("empty body", nil)
	default:
		return nil, decodeErr("neither JSON nor XML", nil)
	}
}

type odataSource struct {
	Name       string
	IsPublic   flexBool
	Updated    flexTime
	Uploaded   flexTime
	EntitySets []string
}

func decodeODataJSON(body []byte) ([]DataSourceInfo, error) {
	if err := checkJSONSize(body); err != nil {
		return nil, err
	}
	var doc struct {
		D *struct {
			odataSource
			DataSources []odataSource
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, decodeErr("invalid OData JSON", err)
	}
	if doc.D == nil {
		return nil, decodeErr(`OData JSON has no "d" object`, nil)
	}
	list := doc.D.DataSources
	if list == nil && doc.D.Name != "" {
		list = []odataSource{doc.D.odataSource}
	}
	out := make([]DataSourceInfo, 0, len(list))
	for _, s := range list {
		out = append(out, DataSourceInfo{
			Name:       s.Name,
			IsPublic:   bool(s.IsPublic),
			Updated:    s.Updated.ptr(),
			Uploaded:   s.Uploaded.ptr(),
			EntitySets: s.EntitySets,
			IsActive:   true,
		})
	}
	return out, nil
}

func decodeAtom(body []byte) ([]DataSourceInfo, error) {
	root, err := parseXML(body)
	if err != nil {
		return nil, decodeErr("invalid Atom XML", err)
	}
	if !strings.EqualFold(root.name, "service") {
		return nil, decodeErr(fmt.Sprintf("XML root is <%s>, not an AtomPub <service>", truncate(root.name, 40)), nil)
	}
	var out []DataSourceInfo
	for _, ws := range root.children {
		if !strings.EqualFold(ws.name, "workspace") {
			continue
		}
		info := DataSourceInfo{
			Name:     ws.childText("title"),
			JobID:    ws.childText("jobId"),
			IsActive: true,
		}
		var err error
		for _, a := range []struct {
			name string
			dst  *bool
		}{{"isPublic", &info.IsPublic}, {"isStagingDataSource", &info.IsStaging}, {"isActive", &info.IsActive}} {
			if v, ok := ws.attr(a.name); ok {
				if *a.dst, err = parseBool(v); err != nil {
					return nil, decodeErr("workspace "+a.name, err)
				}
			}
		}
		if v, ok := ws.attr("updated"); ok {
			if info.Updated, err = parseTime(v); err != nil {
				return nil, decodeErr("workspace updated", err)
			}
		}
		if v, ok := ws.attr("uploaded"); ok {
			if info.Uploaded, err = parseTime(v); err != nil {
				return nil, decodeErr("workspace uploaded", err)
			}
		}
		for _, c := range ws.children {
			if !strings.EqualFold(c.name, "collection") {
				continue
			}
			info.EntitySets = append(info.EntitySets, c.childText("title"))
			if href, ok := c.attr("href"); ok && info.QueryURL == "" {
				info.QueryURL = strings.TrimSpace(href)
				info.AccessID = accessIDFromURL(info.QueryURL)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// accessIDFromURL takes the accessId out of .../REST/v1/data/{accessId}/...
func accessIDFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "data") && i >= 2 && strings.EqualFold(parts[i-1], "v1") {
			return parts[i+1]
		}
	}
	return ""
}
