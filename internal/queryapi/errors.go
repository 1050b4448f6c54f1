package queryapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/sdsops/sdsops/internal/query"
)

// SDS's REST envelope, in which the service answered errors.
const (
	restNS        = "http://schemas.microsoft.com/search/local/ws/rest/v1"
	errCopyright  = "Copyright © sdsops. Answered from an archive of the data source."
	errBrandLogo  = "http://spatial.virtualearth.net/Branding/logo_powered_by.png"
	authValid     = "ValidCredentials"
	authInvalid   = "InvalidCredentials"
	authNoKey     = "NoCredentials"
	errTraceIDLen = 32
)

// wantsJSON tells, before anything is parsed, whether an error should be
// JSON: $format=json or jsonp, in any case. Anything else gets XML, as
// the Atom default suggests.
func wantsJSON(rawQuery string) bool {
	for _, part := range strings.Split(rawQuery, "&") {
		name, val, _ := strings.Cut(strings.ToLower(part), "=")
		switch name {
		case "$format", "%24format", "format":
			if val == "json" {
				return true
			}
		case "jsonp":
			return true
		}
	}
	return false
}

// writeError answers in the envelope: statusCode, statusDescription,
// authenticationResultCode, errorDetails (the reason) and a traceId.
func writeError(w http.ResponseWriter, r *http.Request, asJSON bool, e *query.Error) {
	auth := authValid
	if e.Status == http.StatusUnauthorized {
		auth = authInvalid
		if p, _ := query.ParseParams(r.URL.RawQuery); p["key"] == "" {
			auth = authNoKey
		}
	}
	trace := strings.ReplaceAll(newUUID(), "-", "")[:errTraceIDLen]
	var b bytes.Buffer
	ctype := "application/xml; charset=utf-8"
	if asJSON {
		ctype = "application/json; charset=utf-8"
		b.WriteString(`{"authenticationResultCode":"` + auth + `","brandLogoUri":`)
		b.WriteString(jsonStringOf(errBrandLogo))
		b.WriteString(`,"copyright":` + jsonStringOf(errCopyright))
		b.WriteString(`,"errorDetails":[` + jsonStringOf(e.Msg) + `],"resourceSets":[],"statusCode":` + strconv.Itoa(e.Status))
		b.WriteString(`,"statusDescription":` + jsonStringOf(http.StatusText(e.Status)) + `,"traceId":"` + trace + `"}`)
	} else {
		b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
		b.WriteString(`<Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="` + restNS + `">`)
		b.WriteString("<Copyright>")
		writeXMLText(&b, errCopyright)
		b.WriteString("</Copyright><BrandLogoUri>" + errBrandLogo + "</BrandLogoUri>")
		b.WriteString("<StatusCode>" + strconv.Itoa(e.Status) + "</StatusCode><StatusDescription>" + http.StatusText(e.Status) + "</StatusDescription>")
		b.WriteString("<AuthenticationResultCode>" + auth + "</AuthenticationResultCode><ErrorDetails><string>")
		writeXMLText(&b, e.Msg)
		b.WriteString("</string></ErrorDetails><TraceId>" + trace + "</TraceId><ResourceSets /></Response>\n")
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}

func jsonStringOf(s string) string {
	var b bytes.Buffer
	jsonString(&b, s)
	return b.String()
}
