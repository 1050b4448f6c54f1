package task

import (
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/catalog"
)

func TestConfigFromEnvNightly(t *testing.T) {
	base := map[string]string{"ARCHIVE_BUCKET": "b", "MASTER_KEY_SECRET_ID": "sdsops/master-key"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Limits.Budget != 40 || c.Limits.Concurrency != 5 || c.Limits.RPO != 48*time.Hour || c.ArchivePrefix != "sds-exports/" {
				t.Errorf("defaults %+v", c)
			}
		}},
		{name: "set", env: map[string]string{"JOB_BUDGET": "12", "JOB_CONCURRENCY": "10", "RPO_HOURS": "24", "NIGHTLY_INCLUDE": " a*, b/c ", "NIGHTLY_EXCLUDE": ""},
			check: func(t *testing.T, c Config) {
				if c.Limits.Budget != 12 || c.Limits.Concurrency != 10 || c.Limits.RPO != 24*time.Hour || len(c.Filter.Include) != 2 || c.Filter.Include[1] != "b/c" || len(c.Filter.Exclude) != 0 {
					t.Errorf("config %+v", c)
				}
			}},
		{name: "budget above SDS's 50", env: map[string]string{"JOB_BUDGET": "51"}, wantErr: true},
		{name: "concurrency above 10", env: map[string]string{"JOB_CONCURRENCY": "11"}, wantErr: true},
		{name: "budget not a number", env: map[string]string{"JOB_BUDGET": "forty"}, wantErr: true},
		{name: "rpo zero", env: map[string]string{"RPO_HOURS": "0"}, wantErr: true},
		{name: "bad pattern", env: map[string]string{"NIGHTLY_EXCLUDE": "a/b/c"}, wantErr: true},
		{name: "catalog prefix", env: map[string]string{"CATALOG_PREFIX": "ops"},
			check: func(t *testing.T, c Config) {
				if c.CatalogPrefix != "ops/" {
					t.Errorf("CatalogPrefix %q, want ops/", c.CatalogPrefix)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := ConfigFromEnv(func(k string) string { return env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err == nil && tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestSecretFor(t *testing.T) {
	n := NewService(Config{MasterKeySecretID: "default"}, Deps{})
	overrides := map[string]string{"abc/shops": "by-id", "shops": "by-name", "stores": "stores-key"}
	tests := []struct {
		id   catalog.ID
		want string
	}{
		{catalog.ID{AccessID: "ABC", Name: "Shops"}, "by-id"},
		{catalog.ID{AccessID: "xyz", Name: "SHOPS"}, "by-name"},
		{catalog.ID{AccessID: "xyz", Name: "Stores"}, "stores-key"},
		{catalog.ID{AccessID: "xyz", Name: "Other"}, "default"},
	}
	for _, tt := range tests {
		if got := n.secretFor(overrides, tt.id); got != tt.want {
			t.Errorf("secretFor(%s) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if got := n.secretFor(nil, catalog.ID{AccessID: "a", Name: "b"}); got != "default" {
		t.Errorf("no overrides: %q", got)
	}
}

// Without ARCHIVE_BUCKET a function that needs the bucket is not built:
// the cold start says so, instead of an operation failing on a nil
// dependency later.
func TestNeedsWithoutBucket(t *testing.T) {
	env := &Env{Config: Config{MasterKeySecretID: "default"}}
	for name, need := range map[string]Need{"archive": NeedArchive, "objects": NeedObjects, "converter": NeedConverter, "catalog": NeedCatalog} {
		if _, err := NewServiceFromEnv(env, NeedKeys, need); err == nil || !strings.Contains(err.Error(), "ARCHIVE_BUCKET") {
			t.Errorf("%s without a bucket: %v, want an error naming ARCHIVE_BUCKET", name, err)
		}
	}
	if _, err := NewServiceFromEnv(env, NeedKeys); err != nil {
		t.Errorf("keys alone need no bucket: %v", err)
	}
}
