package sdsemu

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func simServer(t *testing.T) *Server {
	t.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := New(Config{
		MaxDataSources: 2,
		Accounts: []Account{{Name: "Sim", Keys: []string{"sim-account-key"}, DataSources: []DataSource{{
			AccessID: "a1", Name: "One", EntityTypeName: "Things", MasterKey: "sim-master", QueryKey: "sim-query",
			Published: Version{JobID: "v1", EntityCount: 3, Updated: at},
			Prior:     []Version{{JobID: "v0", EntityCount: 2, Updated: at.Add(-time.Hour)}},
		}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublishVersion(t *testing.T) {
	s := simServer(t)
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"v2", "v3"} {
		if err := s.PublishVersion("A1", "one", Version{JobID: id, EntityCount: 5, Updated: at}); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := s.DataSource("a1", "One")
	if d.Published.JobID != "v3" || len(d.Prior) != 2 || d.Prior[0].JobID != "v2" || d.Prior[1].JobID != "v1" {
		t.Errorf("published %s, prior %+v", d.Published.JobID, d.Prior)
	}
	for name, err := range map[string]error{
		"unknown":   s.PublishVersion("a1", "Two", Version{JobID: "v9", Updated: at}),
		"reused id": s.PublishVersion("a1", "One", Version{JobID: "v2", Updated: at}),
		"no date":   s.PublishVersion("a1", "One", Version{JobID: "v9"}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if d2, _ := s.DataSource("a1", "One"); d2.Published.JobID != "v3" {
		t.Errorf("a refused version changed the data source: %s", d2.Published.JobID)
	}
}

func TestAddDataSource(t *testing.T) {
	s := simServer(t)
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	two := DataSource{AccessID: "a1", Name: "Two", EntityTypeName: "Things", MasterKey: "sim-master", QueryKey: "sim-query",
		Published: Version{JobID: "w1", EntityCount: 1, Updated: at}}
	bad := two
	bad.MasterKey = "a-new-key"
	if err := s.AddDataSource("Sim", bad); err == nil {
		t.Error("a data source with an unknown key was added")
	}
	swapped := two
	swapped.MasterKey, swapped.QueryKey = two.QueryKey, two.MasterKey
	if err := s.AddDataSource("Sim", swapped); err == nil {
		t.Error("a query key was accepted as a master key")
	}
	if err := s.AddDataSource("Sim", two); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDataSource("Sim", two); err == nil {
		t.Error("added twice")
	}
	three := two
	three.Name = "Three"
	if err := s.AddDataSource("Sim", three); err == nil {
		t.Error("the account's data source limit was ignored")
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/REST/v1/data?key=sim-account-key")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "<atom:title>Two</atom:title>") {
		t.Errorf("the new data source is not listed:\n%s", body)
	}
	resp, err = http.Get(hs.URL + "/REST/v1/Dataflows/DataSourceDownload/a1/Two?key=sim-master")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("download of the new data source: HTTP %d", resp.StatusCode)
	}
}

func TestRemoveDataSourceFreesItsSlot(t *testing.T) {
	s := simServer(t)
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	ds := func(name string) DataSource {
		return DataSource{AccessID: "a1", Name: name, EntityTypeName: "Things", MasterKey: "sim-master", QueryKey: "sim-query",
			Published: Version{JobID: "w-" + name, EntityCount: 1, Updated: at}}
	}
	if err := s.AddDataSource("Sim", ds("Two")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDataSource("Sim", ds("Three")); err == nil {
		t.Fatal("a third data source beyond the limit of 2 was added")
	}
	if err := s.RemoveDataSource("A1", "two"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.DataSource("a1", "Two"); ok {
		t.Error("removed, still there")
	}
	if err := s.AddDataSource("Sim", ds("Three")); err != nil {
		t.Errorf("the freed slot is not free: %v", err)
	}
	if err := s.RemoveDataSource("a1", "Two"); err == nil {
		t.Error("removing an unknown data source succeeded")
	}
}
