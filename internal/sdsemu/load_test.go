package sdsemu

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// tinyData is a valid upload of n entities with the smallest useful schema.
func tinyData(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Root><xs:schema id="T" xmlns="" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata"><xs:element name="T" msdata:IsDataSet="true"><xs:complexType><xs:choice minOccurs="0" maxOccurs="unbounded"><xs:element name="E"><xs:complexType><xs:sequence><xs:element name="Id" type="xs:string"/><xs:element name="Latitude" type="xs:double"/><xs:element name="Longitude" type="xs:double"/></xs:sequence></xs:complexType></xs:element></xs:choice></xs:complexType><xs:unique name="C" msdata:PrimaryKey="true"><xs:selector xpath=".//E"/><xs:field xpath="Id"/></xs:unique></xs:element></xs:schema>`)
	for i := range n {
		fmt.Fprintf(&b, "<E><Id>%d</Id><Latitude>1</Latitude><Longitude>2</Longitude></E>", i)
	}
	b.WriteString("</Root>")
	return b.Bytes()
}

func (e *env) postLoad(name, op, key string, body []byte, extra ...string) response {
	e.t.Helper()
	p := e.srv.URL + "/REST/v1/Dataflows/LoadDataSource?dataSourceName=" + name + "&loadOperation=" + op + "&input=xml&key=" + key
	for _, x := range extra {
		p += "&" + x
	}
	req, err := http.NewRequest(http.MethodPost, p, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/xml")
	return e.send(req)
}

func TestLoadRequestErrors(t *testing.T) {
	e := newEnv(t, nil)
	data := tinyData(2)
	for _, tc := range []struct {
		name, ds, op, key string
		extra             []string
		status            int
	}{
		{"noKey", "New", "complete", "", nil, http.StatusUnauthorized},
		{"unknownKey", "New", "complete", "nobody", nil, http.StatusUnauthorized},
		{"notMaster", fcName, "complete", trMaster, nil, http.StatusUnauthorized},
		{"noOperation", "New", "", fcMaster, nil, http.StatusBadRequest},
		{"incremental", "New", "incremental", fcMaster, nil, http.StatusBadRequest},
		{"badName", "a%2Fb", "complete", fcMaster, nil, http.StatusBadRequest},
		{"publicStaged", "New", "completeStaging", fcMaster, []string{"setPublic=1"}, http.StatusBadRequest},
		{"dataLocation", "New", "complete", fcMaster, []string{"dataLocation=https%3A%2F%2Fx.blob.core.windows.net%2Fd"}, http.StatusBadRequest},
		{"csv", "New", "complete", fcMaster, []string{"input=csv"}, http.StatusCreated}, // the first input wins
		{"queryKeyOfOtherAccount", "New2", "complete", fcMaster, []string{"queryKey=" + fabMaster}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustStatus(t, e.postLoad(tc.ds, tc.op, tc.key, data, tc.extra...), tc.status)
		})
	}
}

func TestLoadAccountLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxDataSources = 4; c.MaxConcurrentJobs = 3 })
	data := tinyData(1)
	// The fixture account has three data sources: one more fits.
	r := e.postLoad("Sixth", "complete", fcMaster, data)
	mustStatus(t, r, http.StatusCreated)
	if err := e.emu.CompleteJob(jsonResource(t, r.body, 0).get("id").str()); err != nil {
		t.Fatal(err)
	}
	r = e.postLoad("Seventh", "complete", fcMaster, data)
	mustStatus(t, r, http.StatusForbidden)
	if !strings.Contains(string(r.body), "maximum of 4 data sources") {
		t.Errorf("403 body: %s", r.body)
	}
	// Overwriting an existing one is still allowed, up to the jobs-in-process limit.
	mustStatus(t, e.postLoad("Sixth", "complete", fcMaster, data), http.StatusCreated)
	mustStatus(t, e.postLoad("Sixth", "completeStaging", fcMaster, data), http.StatusCreated)
	mustStatus(t, e.postLoad("Sixth", "complete", fcMaster, data), http.StatusCreated)
	mustStatus(t, e.postLoad("Sixth", "complete", fcMaster, data), http.StatusTooManyRequests)
}

func TestLoadWhileDeleting(t *testing.T) {
	e := newEnv(t, nil)
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+ppName+"?key="+fcMaster), http.StatusAccepted)
	r := e.postLoad(ppName, "complete", fcMaster, tinyData(1))
	mustStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "being deleted") {
		t.Errorf("body: %s", r.body)
	}
	for _, j := range e.emu.Jobs() {
		if err := e.emu.CompleteJob(j.ID); err != nil {
			t.Fatal(err)
		}
	}
	r = e.postLoad(ppName, "complete", fcMaster, tinyData(1))
	mustStatus(t, r, http.StatusCreated)
	id := jsonResource(t, r.body, 0).get("id").str()
	if err := e.emu.CompleteJob(id); err != nil {
		t.Fatal(err)
	}
	r = e.get("/REST/v1/Dataflows/LoadDataSource/" + id + "?key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	link := linkURL(t, jsonResource(t, r.body, 0), "datasource", "service")
	if strings.Contains(link, fcAccess) || !strings.HasSuffix(link, "/"+ppName) {
		t.Errorf("re-created data source link %s: want a new access ID", link)
	}
}

func TestLoadTooManyEntities(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxLoadEntities = 100 })
	r := e.postLoad("Big", "complete", fcMaster, tinyData(101))
	mustStatus(t, r, http.StatusCreated)
	id := jsonResource(t, r.body, 0).get("id").str()
	if err := e.emu.CompleteJob(id); err != nil {
		t.Fatal(err)
	}
	r = e.get("/REST/v1/Dataflows/LoadDataSource/" + id + "?o=xml&key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	job := parseXML(t, r.body).child("ResourceSets", "ResourceSet", "Resources", "DataflowJob")
	if job.child("Status").value() != "Aborted" || !strings.Contains(job.child("ErrorMessage").value(), "more than 100 entities") {
		t.Fatalf("job: %s", r.body)
	}
	r = e.get("/REST/v1/data?$format=json&key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), `"Big"`) {
		t.Errorf("data source created: %s", r.body)
	}
}

// Status and failed output of a load are for its master key only; unknown jobs are 404.
func TestLoadStatusKeys(t *testing.T) {
	e := newEnv(t, nil)
	r := e.postLoad("Keyed", "complete", fcMaster, tinyData(1))
	mustStatus(t, r, http.StatusCreated)
	id := jsonResource(t, r.body, 0).get("id").str()
	mustStatus(t, e.get("/REST/v1/Dataflows/LoadDataSource/"+id+"?key="+fcQuery), http.StatusUnauthorized)
	mustStatus(t, e.get("/REST/v1/Dataflows/LoadDataSource/0123?key="+fcMaster), http.StatusNotFound)
	mustStatus(t, e.get("/REST/v1/Dataflows/LoadDataSource/"+id+"/output/failed?key="+fcMaster), http.StatusBadRequest)
	mustStatus(t, e.get("/REST/v1/Dataflows/LoadDataSource?key="+fcMaster), http.StatusMethodNotAllowed)
}

// Whatever the upload holds, reading it ends in an outcome or an error, never a panic, and a
// document that loads is itself a valid upload with the same entities.
func FuzzReadUpload(f *testing.F) {
	f.Add(tinyData(2))
	f.Add(bytes.Replace(tinyData(2), []byte("<Latitude>1</Latitude>"), []byte("<Latitude>x</Latitude>"), 1))
	f.Add([]byte(`<R><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/></R>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out, failed bytes.Buffer
		ow, fw := bufio.NewWriter(&out), bufio.NewWriter(&failed)
		o, err := readUpload(bytes.NewReader(data), "Fuzzed", MaxEntities, ow, fw)
		ow.Flush()
		fw.Flush()
		if err != nil || o.abort != "" {
			return
		}
		var out2, failed2 bytes.Buffer
		ow2, fw2 := bufio.NewWriter(&out2), bufio.NewWriter(&failed2)
		o2, err := readUpload(bytes.NewReader(out.Bytes()), "Fuzzed", MaxEntities, ow2, fw2)
		ow2.Flush()
		if err != nil || o2.abort != "" || o2.entities != o.entities || !bytes.Equal(out2.Bytes(), out.Bytes()) {
			t.Fatalf("the stored form does not load back the same: %v %q %d/%d", err, o2.abort, o2.entities, o.entities)
		}
	})
}
