package sdsemu

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.MaxConcurrentJobs != 10 || cfg.MaxJobsPerDay != 50 || cfg.MaxDataSources != 25 ||
		cfg.JobDuration != 2*time.Second || cfg.DownloadJobDuration != 2*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	emu, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, ok := emu.DataSource("20181f26d9e94c81acdf9496133d4f23", "fourthcoffeesample")
	if !ok || ds.EntityTypeName != "FourthCoffeeShops" || ds.Staged == nil || len(ds.Prior) != 2 ||
		ds.Published.EntityCount < 100 || ds.Published.EntityCount > 1000 {
		t.Errorf("sample data source: %+v", ds)
	}
	if n := len(cfg.Accounts[0].DataSources); n < 3 {
		t.Errorf("%d data sources in the sample account", n)
	}
	// The snapshot is a copy.
	ds.Staged.EntityCount = 1
	if again, _ := emu.DataSource(ds.AccessID, ds.Name); again.Staged.EntityCount == 1 {
		t.Error("DataSource returned shared state")
	}
}

func TestLoadFixtureErrors(t *testing.T) {
	for file, want := range map[string]string{
		"invalid-unknown-field.json":      `unknown field "publishd"`,
		"invalid-duplicate-name.json":     "defined twice",
		"invalid-too-many-entities.json":  "entity count 200001",
		"does-not-exist.json":             "no such file",
		"../../../../nonexistent/fixture": "no such file",
	} {
		_, err := LoadFixture(filepath.Join("testdata", file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", file, err, want)
		}
	}
}

// fixtureJSON builds a one-account fixture with n data sources, edited by mutate.
func fixtureJSON(t *testing.T, n int, mutate func(dss []map[string]any, acct map[string]any)) []byte {
	t.Helper()
	var dss []map[string]any
	for i := range n {
		dss = append(dss, map[string]any{
			"accessId": "abc123", "name": fmt.Sprintf("DS%d", i), "entityTypeName": "E",
			"masterKey": "secret-master", "queryKey": fmt.Sprintf("secret-query-%d", i),
			"published": map[string]any{"jobId": "j1", "entityCount": 10, "updated": "2024-01-01T00:00:00Z"},
		})
	}
	acct := map[string]any{"name": "A", "dataSources": dss}
	if mutate != nil {
		mutate(dss, acct)
	}
	data, err := json.Marshal(map[string]any{"accounts": []any{acct}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFixtureValidation(t *testing.T) {
	version := func(id string) map[string]any {
		return map[string]any{"jobId": id, "entityCount": 1, "updated": "2024-01-01T00:00:00Z"}
	}
	tests := []struct {
		name   string
		n      int
		mutate func(dss []map[string]any, acct map[string]any)
		want   string
	}{
		{"26 data sources", 26, nil, "26 data sources, the limit is 25"},
		{"three prior versions", 1, func(d []map[string]any, _ map[string]any) {
			d[0]["prior"] = []any{version("p1"), version("p2"), version("p3")}
		}, "at most 2"},
		{"version ID twice", 1, func(d []map[string]any, _ map[string]any) { d[0]["staged"] = version("J1") }, "used twice"},
		{"bad name", 1, func(d []map[string]any, _ map[string]any) { d[0]["name"] = "a/b" }, "name must be"},
		{"bad entity type", 1, func(d []map[string]any, _ map[string]any) { d[0]["entityTypeName"] = "1E" }, "entity type name"},
		{"bad access ID", 1, func(d []map[string]any, _ map[string]any) { d[0]["accessId"] = "" }, "access ID"},
		{"same master and query key", 1, func(d []map[string]any, _ map[string]any) { d[0]["queryKey"] = "secret-master" }, "must differ"},
		{"query key used as master key", 2, func(d []map[string]any, _ map[string]any) { d[1]["masterKey"] = "secret-query-0" }, "both as a master key"},
		{"missing key", 1, func(d []map[string]any, _ map[string]any) { delete(d[0], "queryKey") }, "key missing"},
		{"missing updated", 1, func(d []map[string]any, _ map[string]any) { d[0]["published"] = map[string]any{"jobId": "j1"} }, "updated time missing"},
		{"negative padding", 1, func(d []map[string]any, _ map[string]any) { d[0]["entityPaddingBytes"] = -1 }, "padding"},
		{"basic account limit", 6, func(_ []map[string]any, _ map[string]any) {}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := fixtureJSON(t, tc.n, tc.mutate)
			if tc.want == "" {
				// Six data sources pass the enterprise limit but not a basic account's.
				basic := strings.Replace(string(data), `{"accounts"`, `{"limits":{"maxDataSources":5},"accounts"`, 1)
				if _, err := ParseFixture([]byte(basic)); err == nil || !strings.Contains(err.Error(), "limit is 5") {
					t.Errorf("basic limits: %v", err)
				}
				if _, err := ParseFixture(data); err != nil {
					t.Errorf("enterprise limits: %v", err)
				}
				return
			}
			_, err := ParseFixture(data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-") {
				t.Errorf("error text shows a key: %v", err)
			}
		})
	}
}

func TestKeysAcrossAccounts(t *testing.T) {
	data := []byte(`{"accounts": [
		{"name": "A", "keys": ["shared"], "dataSources": []},
		{"name": "B", "keys": ["shared"], "dataSources": []}]}`)
	if _, err := ParseFixture(data); err == nil || !strings.Contains(err.Error(), "another account") {
		t.Errorf("a key in two accounts: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted a config without accounts")
	}
}
