package queryapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/query"
)

// Namespaces of the OData Atom format.
const (
	nsAtom = "http://www.w3.org/2005/Atom"
	nsData = "http://schemas.microsoft.com/ado/2007/08/dataservices"
	nsMeta = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
)

// entity is one entity of an answer, ready to encode.
type entity struct {
	uri   string
	props []query.Prop
}

// page is what an answer holds.
type page struct {
	entities  []entity
	count     int // $inlinecount=allpages; -1 without
	copyright string
	updated   time.Time
	feedID    string
}

// writeXMLText escapes text as the SDS examples show it: markup escaped,
// quotes left as they are (encoding/xml would write &#39;).
func writeXMLText(b *bytes.Buffer, s string) {
	var esc bytes.Buffer
	_ = xml.EscapeText(&esc, []byte(s))
	_, _ = quoteUnescaper.WriteString(b, esc.String())
}

var quoteUnescaper = strings.NewReplacer("&#39;", "'", "&#34;", `"`)

// atomFeed renders a feed; atomEntry a bare entry (a query by ID).
func atomFeed(p page) []byte {
	var b bytes.Buffer
	upd := p.updated.UTC().Format(time.RFC3339)
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<feed xmlns:d="` + nsData + `" xmlns:m="` + nsMeta + `" xmlns="` + nsAtom + `">` + "\n")
	b.WriteString("  <title type=\"text\"></title>\n  <id>")
	writeXMLText(&b, p.feedID)
	b.WriteString("</id>\n  <rights type=\"text\">")
	writeXMLText(&b, p.copyright)
	b.WriteString("</rights>\n  <updated>" + upd + "</updated>\n")
	if p.count >= 0 {
		b.WriteString("  <m:count>" + strconv.Itoa(p.count) + "</m:count>\n")
	}
	for _, e := range p.entities {
		b.WriteString("  <entry>\n")
		atomEntryBody(&b, e, upd, "    ")
		b.WriteString("  </entry>\n")
	}
	b.WriteString("</feed>\n")
	return b.Bytes()
}

func atomEntry(p page) []byte {
	var b bytes.Buffer
	upd := p.updated.UTC().Format(time.RFC3339)
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<entry xmlns:m="` + nsMeta + `" xmlns:d="` + nsData + `" xmlns="` + nsAtom + `">` + "\n")
	atomEntryBody(&b, p.entities[0], upd, "  ")
	b.WriteString("  <rights type=\"text\">")
	writeXMLText(&b, p.copyright)
	b.WriteString("</rights>\n</entry>\n")
	return b.Bytes()
}

func atomEntryBody(b *bytes.Buffer, e entity, updated, in string) {
	b.WriteString(in + "<id>")
	writeXMLText(b, e.uri)
	b.WriteString("</id>\n" + in + "<title type=\"text\"></title>\n" + in + "<updated>" + updated + "</updated>\n")
	b.WriteString(in + "<content type=\"application/xml\">\n" + in + "  <m:properties>\n")
	for _, p := range e.props {
		b.WriteString(in + "    <d:" + p.Name)
		if p.Type != dataset.String {
			b.WriteString(` m:type="` + p.Type.EDM() + `"`)
		}
		if p.Value.Null {
			b.WriteString(" m:null=\"true\" />\n")
			continue
		}
		b.WriteByte('>')
		writeXMLText(b, atomValue(p))
		b.WriteString("</d:" + p.Name + ">\n")
	}
	b.WriteString(in + "  </m:properties>\n" + in + "</content>\n")
}

// atomValue is a value as the Atom examples print it: Booleans 1 or 0,
// dates without a zone (they are UTC).
func atomValue(p query.Prop) string {
	v := p.Value
	switch p.Type {
	case dataset.Long:
		return strconv.FormatInt(v.Int, 10)
	case dataset.Double:
		switch {
		case math.IsNaN(v.Num):
			return "NaN"
		case math.IsInf(v.Num, 1):
			return "INF"
		case math.IsInf(v.Num, -1):
			return "-INF"
		}
		return formatDouble(v.Num)
	case dataset.Boolean:
		if v.Bool {
			return "1"
		}
		return "0"
	case dataset.DateTime:
		return v.Time.UTC().Format("2006-01-02T15:04:05.9999999")
	}
	return v.Str
}

// formatDouble writes the shortest text that reads back as the same
// double, in plain notation where it is not very large or small.
func formatDouble(f float64) string {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// jsonDoc renders OData verbose JSON: d.results, or for a query by ID the
// entity itself as d.
func jsonDoc(p page, single bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"d":{"__copyright":`)
	jsonString(&b, p.copyright)
	if single {
		b.WriteByte(',')
		jsonEntityFields(&b, p.entities[0])
		b.WriteString("}}")
		return b.Bytes()
	}
	if p.count >= 0 {
		b.WriteString(`,"__count":"` + strconv.Itoa(p.count) + `"`)
	}
	b.WriteString(`,"results":[`)
	for i, e := range p.entities {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		jsonEntityFields(&b, e)
		b.WriteByte('}')
	}
	b.WriteString("]}}")
	return b.Bytes()
}

func jsonEntityFields(b *bytes.Buffer, e entity) {
	b.WriteString(`"__metadata":{"uri":`)
	jsonString(b, e.uri)
	b.WriteByte('}')
	for _, p := range e.props {
		b.WriteByte(',')
		jsonString(b, p.Name)
		b.WriteByte(':')
		jsonValue(b, p)
	}
}

// jsonValue writes a typed value: Int64 as a number (as the examples do),
// DateTime as OData's "\/Date(milliseconds since 1970)\/".
func jsonValue(b *bytes.Buffer, p query.Prop) {
	v := p.Value
	if v.Null {
		b.WriteString("null")
		return
	}
	switch p.Type {
	case dataset.Long:
		b.WriteString(strconv.FormatInt(v.Int, 10))
	case dataset.Double:
		if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
			b.WriteString("null") // JSON has no such number
			return
		}
		b.WriteString(formatDouble(v.Num))
	case dataset.Boolean:
		b.WriteString(strconv.FormatBool(v.Bool))
	case dataset.DateTime:
		b.WriteString(`"\/Date(` + strconv.FormatInt(v.Time.UnixMilli(), 10) + `)\/"`)
	default:
		jsonString(b, v.Str)
	}
}

// jsonString escapes as encoding/json does, < > & included, so that the
// text is also safe inside a JSONP script.
func jsonString(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s) // a string always marshals
	b.Write(out)
}
