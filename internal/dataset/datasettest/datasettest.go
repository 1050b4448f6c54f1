// Package datasettest writes SDS DataSet XML exports for tests: the
// schema header of any columns, and a generated export of the documented
// sample schema of any size, produced on the fly. Only tests import it.
package datasettest

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// XSNamespace is the XML Schema namespace; the docs' pages print it with
// https, which exports may carry too (see Export).
const XSNamespace = "http://www.w3.org/2001/XMLSchema"

// Column is one element of the entity type.
type Column struct {
	Name     string
	Type     string // XML Schema type without prefix: string, long, double, boolean, dateTime, anyType
	Required bool   // no minOccurs="0"
	UTC      bool   // msdata:DateTimeMode="Utc", for dateTime columns
}

// Schema is the inline xs:schema of an export.
type Schema struct {
	Root       string // the document's root element
	Name       string // the data source name (schema id)
	EntityType string
	Key        string // the primary key column
	Columns    []Column
	XS         string // the XML Schema namespace; XSNamespace if empty
}

// Header is the declaration, the root's start tag and the schema, each
// entity to follow at two spaces of indent.
func (s Schema) Header() string {
	xs := s.XS
	if xs == "" {
		xs = XSNamespace
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<` + s.Root + `>
  <xs:schema id="` + s.Name + `" xmlns="" xmlns:xs="` + xs + `" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata">
    <xs:element name="` + s.Name + `" msdata:IsDataSet="true" msdata:UseCurrentLocale="true">
      <xs:complexType>
        <xs:choice minOccurs="0" maxOccurs="unbounded">
          <xs:element name="` + s.EntityType + `">
            <xs:complexType>
              <xs:sequence>
`)
	for _, c := range s.Columns {
		b.WriteString(`                <xs:element name="` + c.Name + `"`)
		if c.UTC {
			b.WriteString(` msdata:DateTimeMode="Utc"`)
		}
		b.WriteString(` type="xs:` + c.Type + `"`)
		if !c.Required {
			b.WriteString(` minOccurs="0"`)
		}
		b.WriteString("/>\n")
	}
	b.WriteString(`              </xs:sequence>
            </xs:complexType>
          </xs:element>
        </xs:choice>
      </xs:complexType>
      <xs:unique name="Constraint1" msdata:PrimaryKey="true">
        <xs:selector xpath=".//` + s.EntityType + `"/>
        <xs:field xpath="` + s.Key + `"/>
      </xs:unique>
    </xs:element>
  </xs:schema>
`)
	return b.String()
}

// Footer is the root's end tag.
func (s Schema) Footer() string { return "</" + s.Root + ">\n" }

// EntityType is the entity element of an Export.
const EntityType = "MyDataSourceEntityType"

// Footer ends an Export.
const Footer = "</MainRoot>\n"

// Export is an export shaped like the documentation's example: root
// MainRoot, the documented sample columns plus Notes, which carries Padding
// bytes in every entity.
type Export struct {
	Name     string // the data source name (schema id)
	Entities int
	Padding  int
}

// Fit is the export of that many entities whose padding brings its size
// as close to maxBytes as it goes without passing it.
func Fit(name string, entities int, maxBytes int64) Export {
	d := Export{Name: name, Entities: entities}
	d.Padding = max(0, int((maxBytes-d.Size())/int64(entities)))
	for d.Padding > 0 && d.Size() > maxBytes {
		d.Padding--
	}
	return d
}

// Schema is the export's schema.
func (d Export) Schema() Schema {
	s := Schema{Root: "MainRoot", Name: d.Name, EntityType: EntityType, Key: "EntityID",
		XS: "https://www.w3.org/2001/XMLSchema"}
	for _, c := range []struct{ name, typ string }{
		{"EntityID", "string"}, {"Latitude", "double"}, {"Longitude", "double"},
		{"AddressLine", "string"}, {"Locality", "string"}, {"AdminDistrict", "string"},
		{"CountryRegion", "string"}, {"PostalCode", "string"}, {"Confidence", "string"},
		{"Phone", "string"}, {"Open", "long"}, {"Close", "long"},
		{"IsWheelchairAccessible", "boolean"}, {"Notes", "string"},
	} {
		s.Columns = append(s.Columns, Column{Name: c.name, Type: c.typ})
	}
	return s
}

func (d Export) appendEntity(b []byte, i int) []byte {
	b = append(b, "  <"+EntityType+">\n    <EntityID>"...)
	b = appendPadded(b, i, 9)
	b = append(b, "</EntityID>\n    <Latitude>47."...)
	b = appendPadded(b, (i*7919)%1000000, 6)
	b = append(b, "</Latitude>\n    <Longitude>-122."...)
	b = appendPadded(b, (i*104729)%1000000, 6)
	b = append(b, `</Longitude>
    <AddressLine>1 Microsoft Way &amp; Main</AddressLine>
    <Locality>Redmond</Locality>
    <AdminDistrict>WA</AdminDistrict>
    <CountryRegion>United States</CountryRegion>
    <PostalCode>98052</PostalCode>
    <Confidence>High</Confidence>
    <Phone>303-555-0188</Phone>
    <Open>700</Open>
    <Close>1800</Close>
    <IsWheelchairAccessible>true</IsWheelchairAccessible>
    <Notes>`...)
	for range d.Padding {
		b = append(b, 'x')
	}
	return append(b, "</Notes>\n  </"+EntityType+">\n"...)
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Size is the exact length of the export.
func (d Export) Size() int64 {
	return int64(len(d.Schema().Header())) + int64(d.Entities)*int64(len(d.appendEntity(nil, 0))) + int64(len(Footer))
}

// WriteTo writes the export, one entity at a time.
func (d Export) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 32<<10)
	var n int64
	m, err := bw.WriteString(d.Schema().Header())
	n += int64(m)
	buf := make([]byte, 0, 1024+d.Padding)
	for i := 0; i < d.Entities && err == nil; i++ {
		buf = d.appendEntity(buf[:0], i+1)
		m, err = bw.Write(buf)
		n += int64(m)
	}
	if err == nil {
		m, err = bw.WriteString(Footer)
		n += int64(m)
	}
	if err == nil {
		err = bw.Flush()
	}
	return n, err
}

// String returns the whole export; for small ones only.
func (d Export) String() string {
	var b strings.Builder
	d.WriteTo(&b)
	return b.String()
}
