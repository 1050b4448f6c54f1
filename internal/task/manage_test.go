package task_test

import (
	"strings"
	"testing"
)

func TestDelete(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	out := f.mustInvoke("delete", map[string]any{"accessId": accessID, "dataSourceName": coffee, "confirm": coffee})
	if out["operation"] != "delete" || out["status"] != "Accepted" || out["requestedAt"] == nil {
		t.Fatalf("delete result %v", out)
	}
	st := f.mustInvoke("checkstatus", out)
	if st["status"] != "Pending" {
		t.Fatalf("before the delete job completed: %v", st)
	}
	f.completeJobs()
	if st = f.mustInvoke("checkstatus", st); st["status"] != "Completed" {
		t.Fatalf("after: %v", st)
	}
	if _, ok := f.emu.DataSource(accessID, coffee); ok {
		t.Error("the data source still exists")
	}
}

// A delete retried by the state machine after its first attempt was cut
// off finds the data source gone: the first attempt's delete went ahead.
func TestDeleteRetriedFindsItGone(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	ev := map[string]any{"accessId": accessID, "dataSourceName": "NoSuchSource", "confirm": "NoSuchSource"}
	if _, typ, _ := f.invoke("delete", ev); typ != "DataSourceNotFound" {
		t.Fatalf("first attempt on a missing data source: %s, want DataSourceNotFound", typ)
	}
	ev["retryCount"] = 1
	if out := f.mustInvoke("delete", ev); out["status"] != "Accepted" {
		t.Fatalf("retried delete: %v", out)
	}
}

func TestDeleteStagedVersion(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	out := f.mustInvoke("delete", map[string]any{"accessId": accessID, "dataSourceName": coffee, "confirm": coffee, "isStaging": true})
	st := f.mustInvoke("checkstatus", out)
	if st["status"] != "Pending" {
		t.Fatalf("before: %v", st)
	}
	f.completeJobs()
	if st = f.mustInvoke("checkstatus", st); st["status"] != "Completed" {
		t.Fatalf("after: %v", st)
	}
	ds, ok := f.emu.DataSource(accessID, coffee)
	if !ok || ds.Staged != nil {
		t.Errorf("published data source kept: %v, staged gone: %v", ok, ds.Staged == nil)
	}
}

func TestDeleteAborted(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	out := f.mustInvoke("delete", map[string]any{"accessId": accessID, "dataSourceName": coffee, "confirm": coffee})
	for _, j := range f.emu.Jobs() {
		f.emu.AbortJob(j.ID, "Delete failed.")
	}
	st := f.mustInvoke("checkstatus", out)
	if st["status"] != "Aborted" || st["errorMessage"] != "Delete failed." {
		t.Fatalf("aborted delete: %v", st)
	}
}

func TestSetPublic(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	out := f.mustInvoke("setpublic", map[string]any{"accessId": accessID, "dataSourceName": "FourthCoffeeRoasteries", "public": true})
	if out["operation"] != "setPublic" || out["public"] != true || out["jobId"] == "" || out["status"] != "Pending" {
		t.Fatalf("setpublic result %v", out)
	}
	if st := f.mustInvoke("checkstatus", out); st["status"] != "Pending" {
		t.Fatalf("before: %v", st)
	}
	f.completeJobs()
	if st := f.mustInvoke("checkstatus", out); st["status"] != "Completed" {
		t.Fatalf("after: %v", st)
	}
	if ds, _ := f.emu.DataSource(accessID, "FourthCoffeeRoasteries"); !ds.IsPublic {
		t.Error("the data source is not public")
	}
}

// Bad input is refused with InvalidInput naming the field, before any SDS
// request or secret read.
func TestInvalidInput(t *testing.T) {
	ds := func(name string) map[string]any { return map[string]any{"accessId": accessID, "dataSourceName": name} }
	with := func(m map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	tests := []struct {
		function string
		event    any
		field    string
	}{
		{"startdownload", ds(""), "dataSourceName"},
		{"startdownload", ds(strings.Repeat("x", 51)), "dataSourceName"},
		{"startdownload", ds("a/b"), "dataSourceName"},
		{"startdownload", ds(".."), "dataSourceName"},
		{"startdownload", ds("a?b"), "dataSourceName"},
		{"startdownload", ds("a#b"), "dataSourceName"},
		{"startdownload", ds("a%2Fb"), "dataSourceName"},
		{"startdownload", ds("a b"), "dataSourceName"},
		{"startdownload", ds("a\x01b"), "dataSourceName"},
		{"startdownload", []byte("{\"accessId\":\"" + accessID + "\",\"dataSourceName\":\"a\xffb\"}"), "UTF-8"},
		{"startdownload", map[string]any{"accessId": "", "dataSourceName": coffee}, "accessId"},
		{"startdownload", map[string]any{"accessId": "../" + accessID, "dataSourceName": coffee}, "accessId"},
		{"startdownload", with(ds(coffee), "jobId", "x/y"), "jobId"},
		{"startdownload", with(ds(coffee), "dataSource", "typo"), "dataSource"},
		{"startdownload", with(ds(coffee), "masterKeySecretId", "bad secret"), "masterKeySecretId"},
		{"startdownload", []byte(`[1,2]`), "JSON object"},
		{"startdownload", []byte(`{"accessId":`), "JSON"},
		{"startdownload", []byte(`{"accessId":1,"dataSourceName":"x"}`), "accessId"},
		{"delete", ds(coffee), "confirm"},
		{"delete", with(ds(coffee), "confirm", "FourthCoffeeSampl"), "confirm"},
		{"delete", with(ds(coffee), "confirm", strings.ToLower(coffee)), "confirm"},
		{"delete", with(with(ds(coffee), "confirm", coffee), "isStaging", "yes"), "isStaging"},
		{"setpublic", ds(coffee), "public"},
		{"setpublic", with(ds(coffee), "public", "true"), "public"},
		{"setpublic", with(ds(coffee), "public", 1), "public"},
		{"checkstatus", with(ds(coffee), "operation", "format"), "operation"},
		{"checkstatus", with(with(ds(coffee), "operation", "download"), "jobId", "../x"), "jobId"},
		{"checkstatus", with(with(with(ds(coffee), "operation", "download"), "jobId", "abc"), "statusUrl", "http://127.0.0.2:1/REST/v1/x"), "refusing"},
		{"copytos3", with(with(ds(coffee), "operation", "download"), "status", "Pending"), "status"},
		{"copytos3", with(with(ds(coffee), "operation", "delete"), "status", "Completed"), "operation"},
	}
	for _, tt := range tests {
		t.Run(tt.function+"/"+tt.field, func(t *testing.T) {
			f := newFixture(t, masterKey, nil)
			_, typ, msg := f.invoke(tt.function, tt.event)
			if typ != "InvalidInput" || !strings.Contains(msg, tt.field) {
				t.Fatalf("got %s: %s; want InvalidInput naming %s", typ, msg, tt.field)
			}
			if n := len(f.emu.Requests()); n != 0 {
				t.Errorf("%d SDS requests were sent", n)
			}
		})
	}
}
