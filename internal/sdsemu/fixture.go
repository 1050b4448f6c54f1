package sdsemu

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// defaultFixture is a sample account: FourthCoffeeSample (350 entities, a staged version and two
// prior versions), three small data sources, one of them empty, and Stores-2019, whose export
// has typed columns and geography (points, lines, polygons) as Microsoft's tools write it.
//
//go:embed default.json
var defaultFixture []byte

// Default job timing: long enough for a client to see Pending, short enough for scripts.
const (
	defaultJobDuration         = 2 * time.Second
	defaultDownloadJobDuration = 2 * time.Second
)

// fixture is the JSON file format: the accounts and, optionally, account limits.
type fixture struct {
	Accounts []Account `json:"accounts"`
	Limits   *struct {
		MaxConcurrentJobs int `json:"maxConcurrentJobs"`
		MaxJobsPerDay     int `json:"maxJobsPerDay"`
		MaxDataSources    int `json:"maxDataSources"`
	} `json:"limits,omitempty"`
}

// ParseFixture reads a JSON fixture and returns a validated Config with the default job timing
// (two seconds per job) and the fixture's limits, or the enterprise limits when it has none.
func ParseFixture(data []byte) (Config, error) {
	var f fixture
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt field would otherwise be silently ignored
	if err := dec.Decode(&f); err != nil {
		return Config{}, fmt.Errorf("parse fixture: %w", err)
	}
	cfg := Config{
		Accounts:            f.Accounts,
		JobDuration:         defaultJobDuration,
		DownloadJobDuration: defaultDownloadJobDuration,
	}
	if f.Limits != nil {
		cfg.MaxConcurrentJobs = f.Limits.MaxConcurrentJobs
		cfg.MaxJobsPerDay = f.Limits.MaxJobsPerDay
		cfg.MaxDataSources = f.Limits.MaxDataSources
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("invalid fixture: %w", err)
	}
	return cfg, nil
}

// LoadFixture reads and parses the fixture file at path.
func LoadFixture(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load fixture: %w", err)
	}
	cfg, err := ParseFixture(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// DefaultConfig returns the configuration built from the embedded sample fixture.
func DefaultConfig() Config {
	cfg, err := ParseFixture(defaultFixture)
	if err != nil {
		panic("sdsemu: embedded fixture: " + err.Error()) // covered by the package tests
	}
	return cfg
}
