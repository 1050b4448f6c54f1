package sdsemu

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Data strings of the REST response envelope, as the service sends them.
const (
	restNamespace = "http://schemas.microsoft.com/search/local/ws/rest/v1"
	copyrightText = "Copyright © 2011 Microsoft and its suppliers. All rights reserved. This API cannot be accessed and the content and any results may not be used, reproduced or transmitted in any manner without express written permission from Microsoft Corporation."
	brandLogoURI  = "http://spatial.virtualearth.net/Branding/logo_powered_by.png"

	typeDataflowJob    = "DataflowJob:" + restNamespace
	typeDataServiceJob = "DataServiceJob:" + restNamespace

	authValid   = "ValidCredentials"
	authInvalid = "InvalidCredentials"
	authNone    = "NoCredentials"

	contentJSON = "application/json"
	contentXML  = "application/xml"
)

// format is the response format chosen by output/o (or $format on the information routes).
type format int

const (
	formatJSON format = iota
	formatXML
)

// apiError is an error answered in the REST envelope.
type apiError struct {
	status     int
	auth       string // empty: ValidCredentials
	details    []string
	retryAfter int // seconds; 0: no Retry-After header
}

func newError(status int, detail string) *apiError {
	return &apiError{status: status, details: []string{detail}}
}

// resource is one entry of a resource set, in both encodings.
type resource interface {
	jsonValue() any
	writeXML(x *xmlWriter)
}

// Dates: JSON uses RFC 1123 in GMT, XML uses ISO 8601 with an offset and up to seven fractional
// digits, as the service's .NET serializers do.
func jsonDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
func xmlDate(t time.Time) string  { return t.UTC().Format("2006-01-02T15:04:05.9999999-07:00") }

// JSON envelope; field order is the order of the service's JSON (alphabetical at this level).
type jsonEnvelope struct {
	AuthenticationResultCode string            `json:"authenticationResultCode"`
	BrandLogoURI             string            `json:"brandLogoUri"`
	Copyright                string            `json:"copyright"`
	ErrorDetails             []string          `json:"errorDetails,omitempty"`
	ResourceSets             []jsonResourceSet `json:"resourceSets"`
	StatusCode               int               `json:"statusCode"`
	StatusDescription        string            `json:"statusDescription"`
	TraceID                  string            `json:"traceId"`
}

type jsonResourceSet struct {
	EstimatedTotal int   `json:"estimatedTotal"`
	Resources      []any `json:"resources"`
}

// encodeJSON marshals v the way the service does: no HTML escaping, and "/" written as "\/".
// Outside strings JSON has no "/", so replacing every one is safe.
func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("sdsemu: encode JSON: " + err.Error()) // only our own plain structs are encoded
	}
	return bytes.ReplaceAll(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("/"), []byte(`\/`))
}

// writeEnvelope answers with the REST envelope. resources == nil means an error response, which
// has an empty resourceSets collection.
func writeEnvelope(w http.ResponseWriter, f format, status int, auth string, resources []resource, details []string) {
	if auth == "" {
		auth = authValid
	}
	traceID := newID()
	var body []byte
	if f == formatXML {
		body = xmlEnvelope(status, auth, traceID, resources, details)
		w.Header().Set("Content-Type", contentXML)
	} else {
		env := jsonEnvelope{
			AuthenticationResultCode: auth,
			BrandLogoURI:             brandLogoURI,
			Copyright:                copyrightText,
			ErrorDetails:             details,
			ResourceSets:             []jsonResourceSet{},
			StatusCode:               status,
			StatusDescription:        http.StatusText(status),
			TraceID:                  traceID,
		}
		if resources != nil {
			set := jsonResourceSet{EstimatedTotal: len(resources), Resources: []any{}}
			for _, r := range resources {
				set.Resources = append(set.Resources, r.jsonValue())
			}
			env.ResourceSets = append(env.ResourceSets, set)
		}
		body = encodeJSON(env)
		w.Header().Set("Content-Type", contentJSON)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, f format, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeEnvelope(w, f, e.status, e.auth, nil, e.details)
}

// xmlEnvelope renders the XML envelope; element order is the service's.
func xmlEnvelope(status int, auth, traceID string, resources []resource, details []string) []byte {
	x := newXMLWriter()
	x.start("Response", "xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance",
		"xmlns:xsd", "http://www.w3.org/2001/XMLSchema", "xmlns", restNamespace)
	x.elem("Copyright", copyrightText)
	x.elem("BrandLogoUri", brandLogoURI)
	x.elem("StatusCode", strconv.Itoa(status))
	x.elem("StatusDescription", http.StatusText(status))
	x.elem("AuthenticationResultCode", auth)
	if len(details) > 0 {
		x.start("ErrorDetails")
		for _, d := range details {
			x.elem("string", d)
		}
		x.end("ErrorDetails")
	}
	x.elem("TraceId", traceID)
	if resources == nil {
		x.empty("ResourceSets")
	} else {
		x.start("ResourceSets")
		x.start("ResourceSet")
		x.elem("EstimatedTotal", strconv.Itoa(len(resources)))
		if len(resources) == 0 {
			x.empty("Resources")
		} else {
			x.start("Resources")
			for _, r := range resources {
				r.writeXML(x)
			}
			x.end("Resources")
		}
		x.end("ResourceSet")
		x.end("ResourceSets")
	}
	x.end("Response")
	return x.bytes()
}

// xmlWriter writes indented XML by hand: the service's documents use namespace prefixes,
// xsi:nil and xsi:type exactly as encoding/xml would not.
type xmlWriter struct {
	buf   bytes.Buffer
	depth int
}

func newXMLWriter() *xmlWriter {
	x := &xmlWriter{}
	x.buf.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	return x
}

func (x *xmlWriter) bytes() []byte { return x.buf.Bytes() }

func (x *xmlWriter) open(name string, attrs []string) {
	x.buf.WriteString(strings.Repeat("  ", x.depth))
	x.buf.WriteByte('<')
	x.buf.WriteString(name)
	for i := 0; i+1 < len(attrs); i += 2 {
		x.buf.WriteByte(' ')
		x.buf.WriteString(attrs[i])
		x.buf.WriteString(`="`)
		x.buf.WriteString(xmlAttrEscaper.Replace(attrs[i+1]))
		x.buf.WriteByte('"')
	}
}

// start opens an element that has children; attrs are name, value pairs.
func (x *xmlWriter) start(name string, attrs ...string) {
	x.open(name, attrs)
	x.buf.WriteString(">\n")
	x.depth++
}

func (x *xmlWriter) end(name string) {
	x.depth--
	x.buf.WriteString(strings.Repeat("  ", x.depth))
	x.buf.WriteString("</" + name + ">\n")
}

// elem writes an element with text content.
func (x *xmlWriter) elem(name, text string, attrs ...string) {
	x.open(name, attrs)
	x.buf.WriteByte('>')
	x.buf.WriteString(xmlTextEscaper.Replace(text))
	x.buf.WriteString("</" + name + ">\n")
}

// empty writes a self-closing element, in the service's "<Name attr="v" />" spelling.
func (x *xmlWriter) empty(name string, attrs ...string) {
	x.open(name, attrs)
	x.buf.WriteString(" />\n")
}

// date writes a date element, nil when t is zero.
func (x *xmlWriter) date(name string, t time.Time) {
	if t.IsZero() {
		x.empty(name, "xsi:nil", "true")
		return
	}
	x.elem(name, xmlDate(t))
}

var (
	xmlTextEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	xmlAttrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

// Links.

type jsonLink struct {
	Name string `json:"name,omitempty"`
	Role string `json:"role"`
	URL  string `json:"url"`
}

type link struct{ role, name, url string }

func (l link) json() jsonLink { return jsonLink{Name: l.name, Role: l.role, URL: l.url} }

func (l link) writeXML(x *xmlWriter) {
	attrs := []string{"role", l.role}
	if l.name != "" {
		attrs = append(attrs, "name", l.name)
	}
	x.elem("Link", l.url, attrs...)
}

// dataflowJob is a download job as the status and create responses show it.
type dataflowJob struct {
	job    Job
	self   link
	output *link // succeeded (Completed) or failed (Aborted)
	// noSelf leaves the self link out (the status URL is in a Location header); noError
	// leaves the error message out (it is in the envelope's errorDetails); noTotal leaves
	// the total entity count out.
	noSelf, noError, noTotal bool
}

// jsonDataflowJob: "__type", then the base fields, then the rest alphabetically, as the service
// orders them.
type jsonDataflowJob struct {
	Type                 string     `json:"__type"`
	ID                   string     `json:"id"`
	Links                []jsonLink `json:"links"`
	CompletedDate        string     `json:"completedDate,omitempty"`
	CreatedDate          string     `json:"createdDate"`
	ErrorMessage         string     `json:"errorMessage,omitempty"`
	FailedEntityCount    int        `json:"failedEntityCount"`
	ProcessedEntityCount int        `json:"processedEntityCount"`
	Status               string     `json:"status"`
	TotalEntityCount     *int       `json:"totalEntityCount,omitempty"`
}

func (d dataflowJob) links() []link {
	var ls []link
	if !d.noSelf {
		ls = append(ls, d.self)
	}
	if d.output != nil {
		ls = append(ls, *d.output)
	}
	return ls
}

// totalEntityCount is the version's entity count once the job has completed.
func (d dataflowJob) totalEntityCount() int {
	if d.job.Status == StatusCompleted {
		return d.job.EntityCount
	}
	return 0
}

func (d dataflowJob) jsonValue() any {
	v := jsonDataflowJob{
		Type:         typeDataflowJob,
		ID:           d.job.ID,
		CreatedDate:  jsonDate(d.job.Created),
		ErrorMessage: d.errorMessage(),
		Status:       string(d.job.Status),
	}
	if !d.noTotal {
		n := d.totalEntityCount()
		v.TotalEntityCount = &n
	}
	for _, l := range d.links() {
		v.Links = append(v.Links, l.json())
	}
	if !d.job.Completed.IsZero() {
		v.CompletedDate = jsonDate(d.job.Completed)
	}
	return v
}

// writeXML follows the status example: Id, self link, Status, output link, dates, counts; the
// error message comes last, where the response description lists it.
func (d dataflowJob) writeXML(x *xmlWriter) {
	x.start("DataflowJob")
	x.elem("Id", d.job.ID)
	if !d.noSelf {
		d.self.writeXML(x)
	}
	x.elem("Status", string(d.job.Status))
	if d.output != nil {
		d.output.writeXML(x)
	}
	x.elem("CreatedDate", xmlDate(d.job.Created))
	x.date("CompletedDate", d.job.Completed)
	if !d.noTotal {
		x.elem("TotalEntityCount", strconv.Itoa(d.totalEntityCount()))
	}
	x.elem("ProcessedEntityCount", "0")
	x.elem("FailedEntityCount", "0")
	if m := d.errorMessage(); m != "" {
		x.elem("ErrorMessage", m)
	}
	x.end("DataflowJob")
}

func (d dataflowJob) errorMessage() string {
	if d.noError {
		return ""
	}
	return d.job.ErrorMessage
}

// createdServiceJob is the set-public response: a DataServiceJob in status Created.
type createdServiceJob struct {
	id, description string
	created         time.Time
}

type jsonCreatedServiceJob struct {
	Type        string `json:"__type"`
	ID          string `json:"id"`
	CreatedDate string `json:"createdDate"`
	Description string `json:"description"`
	Status      string `json:"status"`
}

const statusCreated = "Created"

func (c createdServiceJob) jsonValue() any {
	return jsonCreatedServiceJob{
		Type:        typeDataServiceJob,
		ID:          c.id,
		CreatedDate: jsonDate(c.created),
		Description: c.description,
		Status:      statusCreated,
	}
}

func (c createdServiceJob) writeXML(x *xmlWriter) {
	x.start("Resource", "xsi:type", "DataServiceJob")
	x.elem("Id", c.id)
	x.elem("Description", c.description)
	x.elem("Status", statusCreated)
	x.elem("CreatedDate", xmlDate(c.created))
	x.date("CompletedDate", time.Time{})
	x.end("Resource")
}

// listedServiceJob is a delete or set-public job in the job list.
type listedServiceJob struct {
	job     Job
	service *link // the data source link of a set-public job
}

type jsonListedServiceJob struct {
	Type          string     `json:"__type"`
	ID            string     `json:"id"`
	Links         []jsonLink `json:"links,omitempty"`
	Name          string     `json:"name"`
	CompletedDate string     `json:"completedDate,omitempty"`
	CreatedDate   string     `json:"createdDate"`
	Description   string     `json:"description"`
	ErrorMessage  string     `json:"errorMessage,omitempty"`
	Status        string     `json:"status"`
}

func (l listedServiceJob) jsonValue() any {
	v := jsonListedServiceJob{
		Type:         typeDataServiceJob,
		ID:           l.job.ID,
		Name:         l.job.DataSourceName,
		CreatedDate:  jsonDate(l.job.Created),
		Description:  string(l.job.Kind),
		ErrorMessage: l.job.ErrorMessage,
		Status:       string(l.job.Status),
	}
	if l.service != nil {
		v.Links = []jsonLink{l.service.json()}
	}
	if !l.job.Completed.IsZero() {
		v.CompletedDate = jsonDate(l.job.Completed)
	}
	return v
}

func (l listedServiceJob) writeXML(x *xmlWriter) {
	x.start("DataServiceJob")
	x.elem("Name", l.job.DataSourceName)
	x.elem("Id", l.job.ID)
	if l.service != nil {
		l.service.writeXML(x)
	}
	x.elem("Description", string(l.job.Kind))
	x.elem("Status", string(l.job.Status))
	x.elem("CreatedDate", xmlDate(l.job.Created))
	x.date("CompletedDate", l.job.Completed)
	if l.job.ErrorMessage != "" {
		x.elem("ErrorMessage", l.job.ErrorMessage)
	}
	x.end("DataServiceJob")
}
