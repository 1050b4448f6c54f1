package sds

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Response is a decoded SDS REST envelope (JSON or XML).
type Response struct {
	StatusCode               int
	StatusDescription        string
	AuthenticationResultCode string
	TraceID                  string
	Copyright                string
	BrandLogoURI             string
	ErrorDetails             []string
	EstimatedTotal           int64
	Jobs                     []Job // every resource of every resource set
}

// Bounds on a non-download response. The largest documented answer, a
// 15-day job list (at most 750 jobs of about 15 elements), is far below
// each; a hostile answer under them costs a few times its size in memory.
const (
	maxResponseBytes = 8 << 20
	// maxXMLDepth: the deepest documented answer (a job's link inside
	// Response/ResourceSets/ResourceSet/Resources) is 6 levels deep.
	maxXMLDepth = 16
	// maxAnswerNodes bounds the XML elements kept, or the JSON objects and
	// arrays decoded, of one answer.
	maxAnswerNodes = 50000
)

// DecodeResponse decodes an SDS REST envelope, JSON or XML, told apart by
// the first non-blank byte so that a captured body can be fed as it is.
func DecodeResponse(body []byte) (*Response, error) {
	switch firstByte(body) {
	case '{':
		return decodeJSONResponse(body)
	case '<':
		return decodeXMLResponse(body)
	case 0:
		return nil, decodeErr("empty body", nil)
	default:
		return nil, decodeErr("neither JSON nor XML", nil)
	}
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n\ufeff")
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func decodeErr(what string, err error) error {
	return &Error{Class: ErrDecode, Message: what, Err: err}
}

// ---- JSON ------------------------------------------------------------------

// encoding/json matches field names case-insensitively, which is the
// tolerance the service's examples need.
type jsonEnvelope struct {
	AuthenticationResultCode string
	BrandLogoURI             string `json:"brandLogoUri"`
	Copyright                string
	ResourceSets             []struct {
		EstimatedTotal flexInt
		Resources      []jsonJob
	}
	StatusCode        flexInt
	StatusDescription string
	TraceID           string `json:"traceId"`
	ErrorDetails      []string
}

type jsonJob struct {
	Type  string `json:"__type"`
	ID    string
	Name  string
	Links []struct {
		Role   string
		Name   string
		Output string // one documented example names the link this way
		URL    string
	}
	Status               string
	Description          string
	CreatedDate          flexTime
	CompletedDate        flexTime
	TotalEntityCount     optInt
	ProcessedEntityCount flexInt
	FailedEntityCount    flexInt
	ErrorMessage         string
}

// checkJSONSize refuses an answer with more objects and arrays than any
// real answer has, before decoding builds them all.
func checkJSONSize(body []byte) error {
	if n := bytes.Count(body, []byte("{")) + bytes.Count(body, []byte("[")); n > maxAnswerNodes {
		return decodeErr(fmt.Sprintf("JSON answer has %d objects or arrays, more than %d", n, maxAnswerNodes), nil)
	}
	// Array elements and fields are separated by commas.
	if n := bytes.Count(body, []byte(",")); n > 4*maxAnswerNodes {
		return decodeErr(fmt.Sprintf("JSON answer has %d values, more than %d", n, 4*maxAnswerNodes), nil)
	}
	return nil
}

func decodeJSONResponse(body []byte) (*Response, error) {
	if err := checkJSONSize(body); err != nil {
		return nil, err
	}
	var env jsonEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, decodeErr("invalid JSON envelope", err)
	}
	resp := &Response{
		StatusCode:               int(env.StatusCode),
		StatusDescription:        env.StatusDescription,
		AuthenticationResultCode: env.AuthenticationResultCode,
		TraceID:                  strings.TrimSpace(env.TraceID),
		Copyright:                env.Copyright,
		BrandLogoURI:             env.BrandLogoURI,
		ErrorDetails:             env.ErrorDetails,
	}
	if resp.StatusCode == 0 && resp.AuthenticationResultCode == "" && len(env.ResourceSets) == 0 {
		return nil, decodeErr("not an SDS response envelope", nil)
	}
	for _, set := range env.ResourceSets {
		resp.EstimatedTotal += int64(set.EstimatedTotal)
		for _, r := range set.Resources {
			j := Job{
				Type:                 typeName(r.Type),
				ID:                   strings.TrimSpace(r.ID),
				Name:                 strings.TrimSpace(r.Name),
				Description:          r.Description,
				Status:               parseStatus(r.Status),
				CreatedDate:          r.CreatedDate.ptr(),
				CompletedDate:        r.CompletedDate.ptr(),
				TotalEntityCount:     int64(r.TotalEntityCount.n),
				HasTotal:             r.TotalEntityCount.set,
				ProcessedEntityCount: int64(r.ProcessedEntityCount),
				FailedEntityCount:    int64(r.FailedEntityCount),
				ErrorMessage:         r.ErrorMessage,
			}
			for _, l := range r.Links {
				name := l.Name
				if name == "" {
					name = l.Output
				}
				j.Links = append(j.Links, Link{Role: l.Role, Name: name, URL: strings.TrimSpace(l.URL)})
			}
			resp.Jobs = append(resp.Jobs, j)
		}
	}
	return resp, nil
}

// typeName strips the namespace from "DataflowJob:http://schemas...".
func typeName(t string) string {
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[:i]
	}
	return strings.TrimSpace(t)
}

// flexInt accepts a number, a quoted number, an empty string or null: the
// docs show entity counts in all of these forms.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %q", truncate(s, 40))
	}
	*f = flexInt(n)
	return nil
}

// optInt is a flexInt that remembers whether a number was given.
type optInt struct {
	n   flexInt
	set bool
}

func (o *optInt) UnmarshalJSON(b []byte) error {
	if err := o.n.UnmarshalJSON(b); err != nil {
		return err
	}
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	o.set = s != "" && s != "null"
	return nil
}

// flexBool accepts true/false as JSON booleans or strings ("IsPublic":"true").
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*f = false
		return nil
	}
	v, err := parseBool(s)
	if err != nil {
		return err
	}
	*f = flexBool(v)
	return nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, nil
	case "false", "0", "":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", truncate(s, 40))
}

// flexTime accepts the date forms the service uses: RFC 1123 in JSON, ISO
// 8601 with offset in XML, null, empty, and the OData "/Date(ms)/".
type flexTime struct{ t *time.Time }

func (f *flexTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		f.t = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("date is not a string: %w", err)
	}
	t, err := parseTime(s)
	if err != nil {
		return err
	}
	f.t = t
	return nil
}

func (f flexTime) ptr() *time.Time { return f.t }

func parseTime(s string) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "/Date(") && strings.HasSuffix(s, ")/") {
		ms, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(s, "/Date("), ")/"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad date %q", truncate(s, 40))
		}
		t := time.UnixMilli(ms).UTC()
		return &t, nil
	}
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("bad date %q", truncate(s, 40))
}

// ---- XML -------------------------------------------------------------------

// xnode is a minimal element tree; the SDS XML varies enough (resource
// element names, xsi namespaces written with https, empty elements) that
// walking a tree by local name is simpler than struct tags.
type xnode struct {
	name     string // local name
	attrs    []xml.Attr
	children []*xnode
	text     strings.Builder
}

// parseXML builds the tree of an answer. It refuses an answer nested
// deeper than maxXMLDepth or holding more than maxAnswerNodes elements, so
// its memory stays a small multiple of the body whatever the body holds.
func parseXML(body []byte) (*xnode, error) {
	// encoding/xml returns a start tag's attributes all at once: bound
	// them before it builds them (every attribute has an '=').
	if n := bytes.Count(body, []byte("=")); n > maxAnswerNodes {
		return nil, fmt.Errorf("more than %d attributes", maxAnswerNodes)
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var stack []*xnode
	var root *xnode
	nodes := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, fmt.Errorf("elements nested more than %d deep", maxXMLDepth)
			}
			if nodes++; nodes > maxAnswerNodes {
				return nil, fmt.Errorf("more than %d elements", maxAnswerNodes)
			}
			n := &xnode{name: t.Name.Local, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	return nil
}

func (n *xnode) childText(name string) string {
	if c := n.child(name); c != nil {
		return strings.TrimSpace(c.text.String())
	}
	return ""
}

func (n *xnode) attr(local string) (string, bool) {
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, local) {
			return a.Value, true
		}
	}
	return "", false
}

// isNil reports xsi:nil="true" whatever namespace URI the document gave xsi.
func (n *xnode) isNil() bool {
	v, ok := n.attr("nil")
	return ok && strings.EqualFold(strings.TrimSpace(v), "true")
}

func decodeXMLResponse(body []byte) (*Response, error) {
	root, err := parseXML(body)
	if err != nil {
		return nil, decodeErr("invalid XML", err)
	}
	if !strings.EqualFold(root.name, "Response") {
		return nil, decodeErr(fmt.Sprintf("XML root is <%s>, not <Response>", truncate(root.name, 40)), nil)
	}
	resp := &Response{
		StatusDescription:        root.childText("StatusDescription"),
		AuthenticationResultCode: root.childText("AuthenticationResultCode"),
		TraceID:                  root.childText("TraceId"),
		Copyright:                root.childText("Copyright"),
		BrandLogoURI:             root.childText("BrandLogoUri"),
	}
	if s := root.childText("StatusCode"); s != "" {
		code, err := strconv.Atoi(s)
		if err != nil {
			return nil, decodeErr("StatusCode is not a number", err)
		}
		resp.StatusCode = code
	}
	if ed := root.child("ErrorDetails"); ed != nil {
		for _, c := range ed.children {
			resp.ErrorDetails = append(resp.ErrorDetails, strings.TrimSpace(c.text.String()))
		}
	}
	if sets := root.child("ResourceSets"); sets != nil {
		for _, set := range sets.children {
			if s := set.childText("EstimatedTotal"); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return nil, decodeErr("EstimatedTotal is not a number", err)
				}
				resp.EstimatedTotal += n
			}
			res := set.child("Resources")
			if res == nil {
				continue
			}
			for _, r := range res.children {
				j, err := xmlJob(r)
				if err != nil {
					return nil, decodeErr("resource <"+truncate(r.name, 40)+">", err)
				}
				resp.Jobs = append(resp.Jobs, j)
			}
		}
	}
	return resp, nil
}

func xmlJob(r *xnode) (Job, error) {
	j := Job{Type: r.name}
	if t, ok := r.attr("type"); ok { // <Resource xsi:type="DataServiceJob">
		j.Type = typeName(t)
	}
	for _, c := range r.children {
		text := strings.TrimSpace(c.text.String())
		var err error
		switch strings.ToLower(c.name) {
		case "id":
			j.ID = text
		case "name":
			j.Name = text
		case "description":
			j.Description = text
		case "status":
			j.Status = parseStatus(text)
		case "errormessage":
			j.ErrorMessage = text
		case "link":
			role, _ := c.attr("role")
			name, _ := c.attr("name")
			j.Links = append(j.Links, Link{Role: role, Name: name, URL: text})
		case "createddate":
			j.CreatedDate, err = xmlTime(c, text)
		case "completeddate":
			j.CompletedDate, err = xmlTime(c, text)
		case "totalentitycount":
			j.TotalEntityCount, err = xmlInt(c.name, text)
			j.HasTotal = text != "" && !c.isNil()
		case "processedentitycount":
			j.ProcessedEntityCount, err = xmlInt(c.name, text)
		case "failedentitycount":
			j.FailedEntityCount, err = xmlInt(c.name, text)
		}
		if err != nil {
			return j, err
		}
	}
	return j, nil
}

// xmlTime reads a date element; xsi:nil and empty mean "no date".
func xmlTime(c *xnode, text string) (*time.Time, error) {
	if c.isNil() {
		return nil, nil
	}
	return parseTime(text)
}

func xmlInt(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer: %q", field, truncate(s, 40))
	}
	return n, nil
}
