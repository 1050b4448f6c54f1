package dataset

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// testExport generates an SDS export shaped like the documentation's
// example: declaration, root, inline xs:schema, then Entities entity
// elements (Notes carries Padding bytes). It is produced on the fly.
type testExport struct {
	Name     string // data source name (schema id)
	Entities int
	Padding  int
}

const testEntityType = "MyDataSourceEntityType"

func (d testExport) header() string {
	return `<?xml version="1.0" encoding="UTF-8" ?>
<MainRoot>
  <xs:schema xmlns="" xmlns:xs="https://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata" id="` + d.Name + `">
    <xs:element name="` + d.Name + `" msdata:IsDataSet="true" msdata:UseCurrentLocale="true">
      <xs:complexType>
        <xs:choice minOccurs="0" maxOccurs="unbounded">
          <xs:element name="` + testEntityType + `">
            <xs:complexType>
              <xs:sequence>
                <xs:element name="EntityID" type="xs:string" minOccurs="0"/>
                <xs:element name="Latitude" type="xs:double" minOccurs="0"/>
                <xs:element name="Longitude" type="xs:double" minOccurs="0"/>
                <xs:element name="AddressLine" type="xs:string" minOccurs="0"/>
                <xs:element name="Locality" type="xs:string" minOccurs="0"/>
                <xs:element name="AdminDistrict" type="xs:string" minOccurs="0"/>
                <xs:element name="CountryRegion" type="xs:string" minOccurs="0"/>
                <xs:element name="PostalCode" type="xs:string" minOccurs="0"/>
                <xs:element name="Confidence" type="xs:string" minOccurs="0"/>
                <xs:element name="Phone" type="xs:string" minOccurs="0"/>
                <xs:element name="Open" type="xs:long" minOccurs="0"/>
                <xs:element name="Close" type="xs:long" minOccurs="0"/>
                <xs:element name="IsWheelchairAccessible" type="xs:boolean" minOccurs="0" />
                <xs:element name="Notes" type="xs:string" minOccurs="0"/>
              </xs:sequence>
            </xs:complexType>
          </xs:element>
        </xs:choice>
      </xs:complexType>
      <xs:unique name="Constraint1" msdata:PrimaryKey="true">
        <xs:selector xpath=".//` + testEntityType + `"/>
        <xs:field xpath="EntityID"/>
      </xs:unique>
    </xs:element>
  </xs:schema>
`
}

const testFooter = "</MainRoot>\n"

func (d testExport) appendEntity(b []byte, i int) []byte {
	b = append(b, "  <"+testEntityType+">\n    <EntityID>"...)
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
	return append(b, "</Notes>\n  </"+testEntityType+">\n"...)
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// Size is the exact length of the export.
func (d testExport) Size() int64 {
	return int64(len(d.header())) + int64(d.Entities)*int64(len(d.appendEntity(nil, 0))) + int64(len(testFooter))
}

// WriteTo writes the export, one entity at a time.
func (d testExport) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 32<<10)
	var n int64
	m, err := bw.WriteString(d.header())
	n += int64(m)
	buf := make([]byte, 0, 1024+d.Padding)
	for i := 0; i < d.Entities && err == nil; i++ {
		buf = d.appendEntity(buf[:0], i+1)
		m, err = bw.Write(buf)
		n += int64(m)
	}
	if err == nil {
		m, err = bw.WriteString(testFooter)
		n += int64(m)
	}
	if err == nil {
		err = bw.Flush()
	}
	return n, err
}

// String returns the whole export; for small ones only.
func (d testExport) String() string {
	var b strings.Builder
	d.WriteTo(&b)
	return b.String()
}
