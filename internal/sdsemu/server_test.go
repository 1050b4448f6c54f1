package sdsemu

import (
	"net/http"
	"strings"
	"testing"
)

func TestCaseInsensitivePathsAndParameters(t *testing.T) {
	e := newEnv(t, nil)
	upper, lower := strings.ToUpper(fcAccess), strings.ToLower(fcName)
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
	}{
		{"create, lower-case path", "GET", "/rest/v1/dataflows/datasourcedownload/" + upper + "/" + lower + "?KEY=" + fcMaster, 201, "application/json"},
		{"create, O=XML", "GET", "/REST/V1/DATAFLOWS/DATASOURCEDOWNLOAD/" + fcAccess + "/" + fcName + "?Key=" + fcMaster + "&O=XML", 201, "application/xml"},
		{"create, Output=Xml", "GET", createPath(fcAccess, fcName, fcMaster, "Output=Xml"), 201, "application/xml"},
		{"create, JOBID upper-case value", "GET", createPath(fcAccess, fcName, fcMaster, "JOBID="+strings.ToUpper(fcStaged)), 201, "application/json"},
		{"set public, $UPDATEDATASOURCE", "GET", "/REST/v1/DATA/" + upper + "/" + lower + "/$UPDATEDATASOURCE?SETPUBLIC=1&key=" + fcMaster, 201, "application/json"},
		{"set public, escaped $", "GET", "/REST/v1/data/" + fcAccess + "/" + fcName + "/%24updateDataSource?setPublic=0&key=" + fcMaster, 201, "application/json"},
		{"info, $FORMAT=JSON", "GET", "/Rest/V1/Data?KEY=" + fcMaster + "&$FORMAT=JSON", 200, "application/json"},
		{"info, ShowAllVersions=TRUE", "GET", "/REST/v1/data/" + upper + "/" + lower + "?ShowAllVersions=TRUE&key=" + fcMaster, 200, "application/atomsvc+xml"},
		{"job list, lower-case", "GET", "/rest/v1/dataflows/listjobs?key=" + fcMaster + "&output=XML", 200, "application/xml"},
		{"trailing slash", "GET", "/REST/v1/Dataflows/ListJobs/?key=" + fcMaster, 200, "application/json"},
		{"delete, IsStaging=TRUE", "DELETE", "/REST/v1/data/" + upper + "/" + lower + "?IsStaging=TRUE&key=" + fcMaster, 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path)
			mustStatus(t, r, tc.status)
			if got := r.header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
		})
	}
	// The key value itself is case-sensitive.
	r := e.get(createPath(fcAccess, fcName, strings.ToUpper(fcMaster)))
	mustStatus(t, r, http.StatusUnauthorized)
}

// TestKeyRules checks who may do what, and the order of the checks.
func TestKeyRules(t *testing.T) {
	e := newEnv(t, nil)
	ops := map[string]func(accessID, name, key string) (string, string){
		"createDownload": func(a, n, k string) (string, string) { return "GET", createPath(a, n, k) },
		"delete": func(a, n, k string) (string, string) {
			return "DELETE", "/REST/v1/data/" + a + "/" + n + "?key=" + k
		},
		"setPublic": func(a, n, k string) (string, string) {
			return "GET", "/REST/v1/data/" + a + "/" + n + "/$updateDataSource?setPublic=1&key=" + k
		},
	}
	tests := []struct {
		name, accessID, dsName, key string
		status                      int
		auth                        string
	}{
		{"missing key", fcAccess, fcName, "", 401, "NoCredentials"},
		{"unknown key", fcAccess, fcName, unknownKey, 401, "InvalidCredentials"},
		{"unknown key, unknown data source", fcAccess, "Nope", unknownKey, 401, "InvalidCredentials"},
		{"query key", fcAccess, fcName, fcQuery, 401, "InvalidCredentials"},
		{"account key", fcAccess, fcName, contosoAccountKey, 401, "InvalidCredentials"},
		{"master key of another data source", fcAccess, fcName, trMaster, 401, "InvalidCredentials"},
		{"other account's master key", fcAccess, fcName, fabMaster, 401, "InvalidCredentials"},
		{"known key, unknown data source", fcAccess, "Nope", fabMaster, 404, "ValidCredentials"},
		{"known key, unknown access ID", "0000", fcName, fcMaster, 404, "ValidCredentials"},
		{"master key", fcAccess, fcName, fcMaster, 0, "ValidCredentials"},
	}
	for opName, op := range ops {
		for _, tc := range tests {
			t.Run(opName+"/"+tc.name, func(t *testing.T) {
				method, path := op(tc.accessID, tc.dsName, tc.key)
				r := e.do(method, path)
				if tc.status == 0 {
					if r.status >= 300 {
						t.Fatalf("status %d: %s", r.status, r.body)
					}
					return
				}
				mustStatus(t, r, tc.status)
				if got := parseJSON(t, r.body).get("authenticationResultCode").str(); got != tc.auth {
					t.Errorf("authenticationResultCode %q, want %q", got, tc.auth)
				}
			})
		}
	}
}

func TestInfoKeyRules(t *testing.T) {
	e := newEnv(t, nil)
	one := "/REST/v1/data/" + fcAccess + "/" + fcName + "?$format=json&key="
	tests := []struct {
		name, path string
		status     int
	}{
		{"all, master key", "/REST/v1/data?$format=json&key=" + fcMaster, 200},
		{"all, query key", "/REST/v1/data?$format=json&key=" + fcQuery, 200},
		{"all, account key", "/REST/v1/data?$format=json&key=" + contosoAccountKey, 200},
		{"all, missing key", "/REST/v1/data?$format=json", 401},
		{"all, unknown key", "/REST/v1/data?$format=json&key=" + unknownKey, 401},
		{"one, master key", one + fcMaster, 200},
		{"one, its query key", one + fcQuery, 200},
		{"one, another key of the account", one + trMaster, 200},
		{"one, account key", one + contosoAccountKey, 200},
		{"one, other account's key", one + fabMaster, 401},
		{"one, unknown key", one + unknownKey, 401},
		{"unknown data source, unknown key", "/REST/v1/data/" + fcAccess + "/Nope?key=" + unknownKey, 401},
		{"unknown data source, known key", "/REST/v1/data/" + fcAccess + "/Nope?key=" + fabMaster, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustStatus(t, e.get(tc.path), tc.status)
		})
	}

	// Each account sees only its own data sources.
	r := e.get("/REST/v1/data?$format=json&key=" + fabMaster)
	items := parseJSON(t, r.body).get("d", "DataSources").items
	if len(items) != 1 || items[0].get("Name").str() != fabName {
		t.Errorf("Fabrikam sees %s", r.body)
	}
	// Errors of the information routes are XML unless JSON was asked for.
	r = e.get("/REST/v1/data?key=" + unknownKey)
	mustContentType(t, r, "application/xml")
	if got := parseXML(t, r.body).child("AuthenticationResultCode").value(); got != "InvalidCredentials" {
		t.Errorf("AuthenticationResultCode %q", got)
	}
}

func TestJobListKeyRules(t *testing.T) {
	e := newEnv(t, nil)
	mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs"), 401)
	mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs?key="+unknownKey), 401)
	for _, k := range []string{fcMaster, fcQuery, contosoAccountKey, fabMaster} {
		mustStatus(t, e.get("/REST/v1/Dataflows/ListJobs?key="+k), 200)
	}
}

func TestBadParameters(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"output=html", "GET", createPath(fcAccess, fcName, fcMaster, "o=html"), 400},
		{"unknown version jobId", "GET", createPath(fcAccess, fcName, fcMaster, "jobId=0123"), 400},
		{"setPublic=2", "GET", "/REST/v1/data/" + fcAccess + "/" + fcName + "/$updateDataSource?setPublic=2&key=" + fcMaster, 400},
		{"setPublic=true", "GET", "/REST/v1/data/" + fcAccess + "/" + fcName + "/$updateDataSource?setPublic=true&key=" + fcMaster, 400},
		{"isStaging=maybe", "DELETE", "/REST/v1/data/" + fcAccess + "/" + fcName + "?isStaging=maybe&key=" + fcMaster, 400},
		{"isStaging without staged version", "DELETE", "/REST/v1/data/" + trAccess + "/" + trName + "?isStaging=1&key=" + trMaster, 404},
		{"showAllVersions=maybe", "GET", "/REST/v1/data/" + fcAccess + "/" + fcName + "?showAllVersions=maybe&key=" + fcMaster, 400},
		{"$format=xml", "GET", "/REST/v1/data?$format=xml&key=" + fcMaster, 400},
		{"malformed query", "GET", "/REST/v1/Dataflows/ListJobs?key=%zz", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path)
			mustStatus(t, r, tc.status)
			if len(r.body) > 0 && len(parseJSONOrXML(t, r).details()) == 0 {
				t.Errorf("no error details: %s", r.body)
			}
		})
	}
	// The docs' own example sends showAllVersions=3.
	mustStatus(t, e.get("/REST/v1/data/"+fcAccess+"/"+fcName+"?showAllVersions=3&key="+fcMaster), 200)
	if n := len(e.emu.Jobs()); n != 0 {
		t.Errorf("rejected requests created %d jobs", n)
	}
}

// errorBody reads errorDetails from either envelope format.
type errorBody struct {
	j *jnode
	x *xnode
}

func parseJSONOrXML(t *testing.T, r response) errorBody {
	t.Helper()
	if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		return errorBody{j: parseJSON(t, r.body)}
	}
	return errorBody{x: parseXML(t, r.body)}
}

func (b errorBody) details() []string {
	var out []string
	if b.j != nil {
		for _, d := range b.j.get("errorDetails").items {
			out = append(out, d.str())
		}
		return out
	}
	for _, s := range b.x.child("ErrorDetails").all("string") {
		out = append(out, s.value())
	}
	return out
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"unknown route", "GET", "/REST/v1/Nothing?key=" + fcMaster, 404, ""},
		{"outside REST", "GET", "/index.html", 404, ""},
		{"metadata is not served", "GET", "/REST/v1/data/" + fcAccess + "/" + fcName + "/$metadata?key=" + fcMaster, 404, ""},
		{"docs' /data/DataSourceDownload typo", "GET", "/REST/v1/data/DataSourceDownload/" + fcAccess + "/" + fcName + "?key=" + fcMaster, 404, ""},
		{"empty segment", "GET", "/REST/v1/data//" + fcName + "?key=" + fcMaster, 404, ""},
		{"POST create", "POST", createPath(fcAccess, fcName, fcMaster), 405, "GET"},
		{"PUT data source", "PUT", "/REST/v1/data/" + fcAccess + "/" + fcName + "?key=" + fcMaster, 405, "GET, DELETE"},
		{"DELETE job list", "DELETE", "/REST/v1/Dataflows/ListJobs?key=" + fcMaster, 405, "GET"},
		{"HEAD create", "HEAD", createPath(fcAccess, fcName, fcMaster), 405, "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path)
			mustStatus(t, r, tc.status)
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if tc.method != "HEAD" && parseJSON(t, r.body).get("statusCode").int() != tc.status {
				t.Errorf("envelope: %s", r.body)
			}
		})
	}
	if n := len(e.emu.Jobs()); n != 0 {
		t.Errorf("%d jobs created", n)
	}
}

func TestLinksUseEmulatorAddress(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublicBaseURL = "http://sds.test:8080/" })
	res := e.createDownload(fcAccess, fcName, fcMaster)
	want := "http://sds.test:8080/REST/v1/dataflows/DataSourceDownload/" + fcAccess + "/" + fcName + "/" + res.get("id").str()
	if got := linkURL(t, res, "self", ""); got != want {
		t.Errorf("self link %q, want %q", got, want)
	}

	e = newEnv(t, nil)
	res = e.createDownload(strings.ToUpper(fcAccess), strings.ToLower(fcName), fcMaster)
	// Links use the data source's own spelling and the address the client used.
	want = e.srv.URL + "/REST/v1/dataflows/DataSourceDownload/" + fcAccess + "/" + fcName + "/" + res.get("id").str()
	if got := linkURL(t, res, "self", ""); got != want {
		t.Errorf("self link %q, want %q", got, want)
	}
}
