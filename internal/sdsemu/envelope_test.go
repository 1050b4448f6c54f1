package sdsemu

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const responseRoot = `<Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="http://schemas.microsoft.com/search/local/ws/rest/v1">`

func mustContentType(t *testing.T, r response, want string) {
	t.Helper()
	if got := r.header.Get("Content-Type"); got != want {
		t.Errorf("Content-Type %q, want %q", got, want)
	}
}

func TestCreateDownloadMatchesDocExamples(t *testing.T) {
	e := newEnv(t, nil)

	r := e.get(createPath(fcAccess, fcName, fcMaster))
	mustStatus(t, r, http.StatusCreated)
	mustContentType(t, r, "application/json")
	assertShape(t, "create JSON", parseJSON(t, r.body).shape(), parseJSON(t, readExample(t, "create-a-download-job-2.json")).shape())
	res := jsonResource(t, r.body, 0)
	if got := res.get("__type").str(); got != "DataflowJob:http://schemas.microsoft.com/search/local/ws/rest/v1" {
		t.Errorf("__type %q", got)
	}
	if res.get("status").str() != "Pending" || res.get("totalEntityCount").int() != 0 {
		t.Errorf("new job: status %s, total %d", res.get("status").str(), res.get("totalEntityCount").int())
	}
	// The service escapes "/" in JSON strings.
	if !strings.Contains(string(r.body), `"http:\/\/spatial.virtualearth.net\/Branding\/logo_powered_by.png"`) {
		t.Errorf("brandLogoUri not written as the service writes it: %s", r.body)
	}
	if want := "Mon, 03 Jun 2024 14:30:15 GMT"; res.get("createdDate").str() != want {
		t.Errorf("createdDate %q, want %q", res.get("createdDate").str(), want)
	}

	r = e.get(createPath(fcAccess, fcName, fcMaster, "o=xml"))
	mustStatus(t, r, http.StatusCreated)
	mustContentType(t, r, "application/xml")
	assertShape(t, "create XML", parseXML(t, r.body).shape(), parseXML(t, readExample(t, "create-a-download-job-1.xml")).shape())
	for _, want := range []string{responseRoot, `<CompletedDate xsi:nil="true" />`, "<CreatedDate>2024-06-03T14:30:15.1234567+00:00</CreatedDate>"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("XML lacks %s:\n%s", want, r.body)
		}
	}
}

func TestDownloadStatusMatchesDocExamples(t *testing.T) {
	e := newEnv(t, nil)
	id := e.createDownload(fcAccess, fcName, fcMaster).get("id").str()
	e.clock.Advance(90 * time.Second)
	if err := e.emu.CompleteJob(id); err != nil {
		t.Fatal(err)
	}
	self := selfURL(e.srv.URL, Job{ID: id, AccessID: fcAccess, DataSourceName: fcName})

	r := e.get(e.localPath(self) + "?key=" + fcMaster + "&o=xml")
	mustStatus(t, r, http.StatusOK)
	assertShape(t, "status XML", parseXML(t, r.body).shape(), parseXML(t, readExample(t, "get-download-data-source-job-status-1.xml")).shape())
	job := parseXML(t, r.body).child("ResourceSets", "ResourceSet", "Resources", "DataflowJob")
	if got := job.child("CompletedDate").value(); got != "2024-06-03T14:31:45.1234567+00:00" {
		t.Errorf("CompletedDate %q", got)
	}
	if got := job.child("TotalEntityCount").value(); got != "120" {
		t.Errorf("TotalEntityCount %q, want 120", got)
	}
	links := job.all("Link")
	if len(links) != 2 || links[1].attr("role") != "output" || links[1].attr("name") != "succeeded" || links[1].value() != self+"/output/succeeded" {
		t.Errorf("output link wrong: %+v", links)
	}

	r = e.get(e.localPath(self) + "?key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	got := parseJSON(t, r.body)
	example := parseJSON(t, readExample(t, "get-download-data-source-job-status-2.json"))
	assertShape(t, "status JSON envelope", got.keys, example.keys)
	// The example leaves out completedDate of a completed job; the service writes it between
	// links and createdDate (as in the load status example).
	wantKeys := slices.Clone(example.get("resourceSets", 0, "resources", 0).keys)
	wantKeys = slices.Insert(wantKeys, slices.Index(wantKeys, "createdDate"), "completedDate")
	res := got.get("resourceSets", 0, "resources", 0)
	assertShape(t, "status JSON resource", res.keys, wantKeys)
	assertShape(t, "self link", res.get("links", 0).keys, example.get("resourceSets", 0, "resources", 0, "links", 0).keys)
	// The output link is named with "name" (job list and downloaded-data pages), not the
	// "output" key of this example.
	assertShape(t, "output link", res.get("links", 1).keys, []string{"name", "role", "url"})
	if res.get("completedDate").str() != "Mon, 03 Jun 2024 14:31:45 GMT" {
		t.Errorf("completedDate %q", res.get("completedDate").str())
	}
}

func TestSetPublicMatchesDocExamples(t *testing.T) {
	e := newEnv(t, nil)
	base := "/REST/v1/data/" + fcAccess + "/" + fcName + "/$updateDataSource?key=" + fcMaster

	r := e.get(base + "&setPublic=1")
	mustStatus(t, r, http.StatusCreated)
	assertShape(t, "set public JSON", parseJSON(t, r.body).shape(), parseJSON(t, readExample(t, "make-public-data-source-2.json")).shape())
	res := jsonResource(t, r.body, 0)
	if res.get("__type").str() != "DataServiceJob:http://schemas.microsoft.com/search/local/ws/rest/v1" ||
		res.get("description").str() != `Data source "FourthCoffeeSample" set public` || res.get("status").str() != "Created" {
		t.Errorf("unexpected resource: %s", r.body)
	}
	if !strings.Contains(string(r.body), `"description":"Data source \"FourthCoffeeSample\" set public"`) {
		t.Errorf("description not escaped as JSON: %s", r.body)
	}

	r = e.get(base + "&setPublic=0&o=xml")
	mustStatus(t, r, http.StatusCreated)
	assertShape(t, "set public XML", parseXML(t, r.body).shape(), parseXML(t, readExample(t, "make-public-data-source-1.xml")).shape())
	x := parseXML(t, r.body).child("ResourceSets", "ResourceSet", "Resources", "Resource")
	if x.attr("xsi:type") != "DataServiceJob" || x.child("Description").value() != `Data source "FourthCoffeeSample" set private` {
		t.Errorf("unexpected resource: %s", r.body)
	}
}

func TestJobListMatchesDocExamples(t *testing.T) {
	e := newEnv(t, nil)
	// As in the example: a completed DataSourceAccess job, then a newer pending DataSourceDelete.
	r := e.get("/REST/v1/data/" + trAccess + "/" + trName + "/$updateDataSource?setPublic=1&key=" + trMaster)
	mustStatus(t, r, http.StatusCreated)
	accessID := jsonResource(t, r.body, 0).get("id").str()
	e.clock.Advance(time.Minute)
	if err := e.emu.CompleteJob(accessID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster), http.StatusAccepted)

	r = e.get("/REST/v1/Dataflows/ListJobs?key=" + fcMaster + "&o=xml")
	mustStatus(t, r, http.StatusOK)
	example := parseXML(t, readExample(t, "get-job-list-2.xml"))
	resources := example.child("ResourceSets", "ResourceSet", "Resources")
	resources.children = slices.DeleteFunc(resources.children, func(n *xnode) bool { return n.name == "DataflowJob" })
	assertShape(t, "job list XML", parseXML(t, r.body).shape(), example.shape())

	r = e.get("/REST/v1/Dataflows/ListJobs?key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	// The JSON example lacks a closing quote and comma after the first name; mend that one spot.
	raw := strings.Replace(string(readExample(t, "get-job-list-1.json")), `"DeleteADataSource`+"\n", `"DeleteADataSource",`+"\n", 1)
	exJSON := parseJSON(t, []byte(raw))
	got := parseJSON(t, r.body)
	assertShape(t, "job list JSON envelope", got.keys, exJSON.keys)
	var want [][]string
	for _, res := range exJSON.get("resourceSets", 0, "resources").items {
		if strings.HasPrefix(res.get("__type").str(), "DataServiceJob:") {
			want = append(want, res.shape())
		}
	}
	items := got.get("resourceSets", 0, "resources").items
	if len(items) != len(want) {
		t.Fatalf("%d jobs listed, want %d: %s", len(items), len(want), r.body)
	}
	for i, res := range items {
		assertShape(t, "job list JSON entry", res.shape(), want[i])
	}
	if items[1].get("links", 0, "url").str() != e.srv.URL+"/REST/v1/data/"+trAccess+"/"+trName {
		t.Errorf("data source link %q", items[1].get("links", 0, "url").str())
	}
}

func TestInfoMatchesDocExamples(t *testing.T) {
	e := newEnv(t, nil)

	r := e.get("/REST/v1/data?key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	mustContentType(t, r, "application/atomsvc+xml")
	got, example := parseXML(t, r.body), parseXML(t, readExample(t, "get-data-source-information-1.xml"))
	if got.name != example.name || len(got.children) != 4 || got.children[0].name != "bsi:copyright" {
		t.Fatalf("service document: %s", r.body)
	}
	for _, ws := range got.all("app:workspace") {
		assertShape(t, "workspace", ws.shape(), example.all("app:workspace")[0].shape())
	}
	if href := got.all("app:workspace")[0].child("app:collection").attr("app:href"); href != e.srv.URL+"/REST/v1/data/"+fcAccess+"/"+fcName+"/FourthCoffeeShops" {
		t.Errorf("collection href %q", href)
	}

	r = e.get("/REST/v1/data?key=" + fcMaster + "&$format=json")
	mustStatus(t, r, http.StatusOK)
	mustContentType(t, r, "application/json")
	gotJ, exJ := parseJSON(t, r.body), parseJSON(t, readExample(t, "get-data-source-information-2.json"))
	assertShape(t, "info list JSON", gotJ.get("d").keys, exJ.get("d").keys)
	for _, it := range gotJ.get("d", "DataSources").items {
		assertShape(t, "info list JSON item", it.shape(), exJ.get("d", "DataSources", 0).shape())
	}

	r = e.get("/REST/v1/data/" + fcAccess + "/" + fcName + "?key=" + fcQuery + "&showAllVersions=true")
	mustStatus(t, r, http.StatusOK)
	assertShape(t, "all versions Atom", parseXML(t, r.body).shape(), parseXML(t, readExample(t, "get-data-source-information-3.xml")).shape())
	ws := parseXML(t, r.body).all("app:workspace")
	wantFlags := [][3]string{{"false", "true", "true"}, {"true", "false", "false"}, {"false", "false", "true"}, {"false", "false", "true"}}
	wantJobs := []string{"0f6c2a41d9b84e7fa3c95e1d27b80a64", fcStaged, fcPrior1, "c4b2a0f8e6d4c2b0a8f6e4d2c0b8a6f4"}
	for i, w := range ws {
		flags := [3]string{w.attr("bsi:isStagingDataSource"), w.attr("bsi:isActive"), w.attr("bsi:isPublic")}
		if flags != wantFlags[i] || w.child("atom:jobId").value() != wantJobs[i] {
			t.Errorf("version %d: flags %v job %s", i, flags, w.child("atom:jobId").value())
		}
	}
	if ws[1].attr("bsi:uploaded") != "2024-05-04T08:00:30Z" {
		t.Errorf("staged version uploaded %q", ws[1].attr("bsi:uploaded"))
	}

	r = e.get("/REST/v1/data/" + fcAccess + "/" + fcName + "?key=" + fcMaster + "&$format=json")
	mustStatus(t, r, http.StatusOK)
	assertShape(t, "single JSON", parseJSON(t, r.body).shape(), parseJSON(t, readExample(t, "get-data-source-information-4.json")).shape())
	if d := parseJSON(t, r.body).get("d"); d.get("IsPublic").str() != "true" || d.get("Updated").str() != "Thu, 02 May 2024 10:15:00 GMT" {
		t.Errorf("single JSON: %s", r.body)
	}
}

func TestErrorEnvelope(t *testing.T) {
	e := newEnv(t, nil)

	r := e.get(createPath(fcAccess, "NoSuchSource", fcMaster))
	mustStatus(t, r, http.StatusNotFound)
	j := parseJSON(t, r.body)
	assertShape(t, "error JSON", j.keys, []string{"authenticationResultCode", "brandLogoUri", "copyright",
		"errorDetails", "resourceSets", "statusCode", "statusDescription", "traceId"})
	if j.get("authenticationResultCode").str() != "ValidCredentials" || j.get("statusCode").int() != 404 ||
		j.get("statusDescription").str() != "Not Found" || len(j.get("errorDetails").items) != 1 ||
		!j.get("resourceSets").isArr || len(j.get("resourceSets").items) != 0 {
		t.Errorf("error JSON: %s", r.body)
	}

	r = e.get(createPath(fcAccess, "NoSuchSource", fcMaster, "o=xml"))
	mustStatus(t, r, http.StatusNotFound)
	x := parseXML(t, r.body)
	assertShape(t, "error XML", x.shape(), []string{"Response", "Response/Copyright", "Response/BrandLogoUri",
		"Response/StatusCode", "Response/StatusDescription", "Response/AuthenticationResultCode",
		"Response/ErrorDetails", "Response/ErrorDetails/string", "Response/TraceId", "Response/ResourceSets"})
	if !strings.Contains(string(r.body), responseRoot) || !strings.Contains(x.child("ErrorDetails", "string").value(), "NoSuchSource") {
		t.Errorf("error XML: %s", r.body)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(x.child("TraceId").value()) {
		t.Errorf("trace ID %q", x.child("TraceId").value())
	}
}
