package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sdsops/sdsops/internal/sds"
)

// testDataSet generates an SDS export like the documentation's example:
// the XML declaration, a root, the inline xs:schema, then Entities entity
// elements of equal size (EntityID is zero-padded; Notes carries Padding
// bytes). It is produced on the fly, never held in memory.
//
// It is deliberately not datasettest.Export, which the dataset reader's
// own tests are written with: its header is the download page's example
// as printed (the declaration with " ?>", xmlns before id, the https
// namespace, the stray space in "minOccurs=\"0\" />"), written out here by
// hand, so that the archive's verification is checked against text that
// no helper shared with the verifier produced. A mistake common to
// datasettest and the reader cannot make these tests pass.
type testDataSet struct {
	Name     string // data source name (schema id)
	Entities int
	Padding  int
}

const testEntityType = "MyDataSourceEntityType"

func (d testDataSet) header() string {
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

// appendEntity appends entity i; every entity has the same length.
func (d testDataSet) appendEntity(b []byte, i int) []byte {
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
func (d testDataSet) Size() int64 {
	return int64(len(d.header())) + int64(d.Entities)*int64(len(d.appendEntity(nil, 0))) + int64(len(testFooter))
}

// WriteTo writes the export, one entity at a time.
func (d testDataSet) WriteTo(w io.Writer) (int64, error) {
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

// SHA256 hashes the export as generated.
func (d testDataSet) SHA256() string {
	h := sha256.New()
	d.WriteTo(h)
	return hex.EncodeToString(h.Sum(nil))
}

// String returns the whole export; for small ones only.
func (d testDataSet) String() string {
	var b strings.Builder
	d.WriteTo(&b)
	return b.String()
}

// serveMode is how the test SDS server answers a download.
type serveMode int

const (
	serveOK        serveMode = iota // Content-Length and the whole export
	serveChunked                    // the whole export, no Content-Length
	serveTruncated                  // Content-Length of the whole, then the connection closes at Cut
	serveReset                      // Content-Length of the whole, then a TCP reset at Cut
	serveShortLen                   // Content-Length of Cut, then the whole export
	serveStatus500                  // HTTP 500 with an SDS error body
	serveBody                       // Body as it is, with its Content-Length
)

// testSource is an httptest SDS server answering the output link of a
// succeeded download job.
type testSource struct {
	t     testing.TB
	srv   *httptest.Server
	data  testDataSet
	mode  serveMode
	cut   int64  // where serveTruncated, serveReset and serveShortLen stop
	body  string // for serveBody
	calls atomic.Int32
}

const testKey = "test-master-key"

const outputPath = "/REST/v1/x/output/succeeded"

func newTestSource(t testing.TB, data testDataSet, mode serveMode) *testSource {
	s := &testSource{t: t, data: data, mode: mode, cut: data.Size() * 3 / 4}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testSource) serve(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if r.URL.Path != outputPath {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("key") != testKey {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	size := s.data.Size()
	switch s.mode {
	case serveOK:
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		s.data.WriteTo(w)
	case serveChunked:
		w.Header().Set("Content-Type", "application/xml")
		s.data.WriteTo(w)
	case serveTruncated, serveReset, serveShortLen:
		// Raw HTTP: net/http would refuse to send a body that disagrees
		// with its Content-Length.
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			s.t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		if s.mode == serveShortLen {
			fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", s.cut)
			s.data.WriteTo(rw) // the client stops reading at Content-Length
			rw.Flush()
			return
		}
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n", size)
		s.data.WriteTo(&limitWriter{w: rw, n: s.cut})
		rw.Flush()
		if s.mode == serveReset {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // close sends RST
			}
		}
	case serveStatus500:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"errorDetails":["An internal server error occurred."],"statusCode":500,"statusDescription":"Internal Server Error","traceId":"t1"}`)
	case serveBody:
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(s.body)))
		io.WriteString(w, s.body)
	}
}

// open returns the function Copy calls, opening the export through a real
// sds.Client.
func (s *testSource) open(opts ...sds.Option) Opener {
	return sdsOpener(func(ctx context.Context) (*sds.Export, error) {
		c, err := sds.New(s.srv.URL, testKey, opts...)
		if err != nil {
			return nil, err
		}
		return c.OpenExportURL(ctx, s.srv.URL+outputPath)
	})
}

// sdsOpener adapts an SDS export to an Opener, as the task package does.
func sdsOpener(open func(context.Context) (*sds.Export, error)) Opener {
	return func(ctx context.Context) (Export, error) {
		exp, err := open(ctx)
		if err != nil || exp == nil {
			return Export{}, err
		}
		out := Export{Body: exp.Body, Length: exp.ContentLength,
			Corrupt: func(err error) bool { return errors.Is(err, sds.ErrDecode) }}
		if exp.Delivery != nil {
			out.Delivery = func() *DeliveryRecord {
				d := exp.Delivery
				return &DeliveryRecord{Encoding: d.Encoding, ContentType: d.ContentType, Bytes: d.Bytes, SHA256: d.SHA256, Entry: d.Entry}
			}
		}
		return out, nil
	}
}

// limitWriter writes at most n bytes and then reports success without
// writing, so a generator stops cleanly at the cut.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.ErrShortWrite
	}
	q := p
	if int64(len(q)) > l.n {
		q = q[:l.n]
	}
	n, err := l.w.Write(q)
	l.n -= int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}
