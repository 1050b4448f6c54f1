package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/retention"
	"github.com/sdsops/sdsops/internal/sds"
)

// Defaults of Config that are the task package's own; the others are
// sds.DefaultBaseURL, sds.DefaultTimeout, archive.DefaultPrefix,
// masterkey.DefaultTTL and the nightly limits' (nightly.Limits.WithDefaults).
const (
	// DefaultFirstWait is the first wait between status checks, doubled
	// after every check up to DefaultMaxWait. With these (15 s to 15 min)
	// a 12-hour job is polled about 55 times, a one-minute job is noticed
	// within a minute of finishing.
	DefaultFirstWait = 15 * time.Second
	DefaultMaxWait   = 15 * time.Minute
	// DefaultJobDeadline is an hour past the documented worst case of 12 h.
	DefaultJobDeadline = 13 * time.Hour
)

// DrillConfig is the restore drills' configuration.
type DrillConfig struct {
	PerRun int           // data sources drilled per run
	MaxAge time.Duration // a data source's last successful drill older than this counts in DataSourcesPastDrillAge
}

// Config is the functions' configuration, read from the environment.
type Config struct {
	SDSBaseURL        string        // SDS_BASE_URL: the only host that ever receives a key
	MasterKeySecretID string        // MASTER_KEY_SECRET_ID: default secret (name or ARN)
	ArchiveBucket     string        // ARCHIVE_BUCKET
	ArchivePrefix     string        // ARCHIVE_PREFIX
	ArchiveKMSKeyID   string        // ARCHIVE_KMS_KEY_ID: SSE-KMS when set, SSE-S3 otherwise
	SecretTTL         time.Duration // SECRET_CACHE_TTL (Go duration)
	// ArchiveRetention locks every archive, manifest version and
	// conversion output as it is written (ARCHIVE_LOCK_MODE: GOVERNANCE,
	// COMPLIANCE or empty; ARCHIVE_LOCK_DAYS).
	ArchiveRetention archive.Retention
	// SDSTimeout bounds each SDS request until its headers arrive, and
	// each silence while its body streams (SDS_TIMEOUT, Go duration;
	// default sds.DefaultTimeout). A download's body may take longer in all.
	SDSTimeout time.Duration
	// Poll backoff: the first wait, doubled after every check up to MaxWait.
	FirstWait time.Duration // POLL_FIRST_WAIT_SECONDS
	MaxWait   time.Duration // POLL_MAX_WAIT_SECONDS
	// JobDeadline is how long a job may stay pending before checkstatus
	// reports deadlinePassed (JOB_DEADLINE_SECONDS; default
	// DefaultJobDeadline).
	JobDeadline time.Duration

	// The nightly run (discover, record, inventory); the catalog lives in
	// ArchiveBucket.

	// KeyOverridesSecretID names a secret holding a JSON object from
	// "accessId/name" or "name" (case-insensitive) to the secret id of that
	// data source's master key (KEY_OVERRIDES_SECRET_ID; optional).
	// MasterKeySecretID serves every other data source and lists the account.
	KeyOverridesSecretID string
	CatalogPrefix        string // CATALOG_PREFIX: "" puts the catalog at catalog/v1/
	// Limits: JOB_BUDGET, JOB_CONCURRENCY, RPO_HOURS.
	Limits nightly.Limits
	// Filter: NIGHTLY_INCLUDE / NIGHTLY_EXCLUDE, comma-separated patterns
	// (name or accessId/name).
	Filter nightly.Filter
	// Drill: DRILL_PER_RUN, DRILL_MAX_AGE_DAYS (the drill package's
	// defaults when unset).
	Drill DrillConfig

	// The night's report, retention and heartbeat (report, discover).

	// Retention: RETENTION_KEEP_VERSIONS (0: keep everything) and
	// RETENTION_KEEP_DAYS.
	Retention retention.Policy
	// GuardStateMachines (RETENTION_GUARD_STATE_MACHINES, comma-separated
	// ARNs): while one of their executions runs for a data source (a
	// restore, a drill), retention deletes nothing of it.
	GuardStateMachines []string
	// SummaryTopicARN receives the night's summary (SUMMARY_TOPIC_ARN;
	// none when empty); SummaryOnSuccess also after a night without
	// failure (SUMMARY_ON_SUCCESS, default true).
	SummaryTopicARN  string
	SummaryOnSuccess bool
	// StackName is the heartbeat metric's Stack dimension (STACK_NAME;
	// nightly.DefaultStackName when empty).
	StackName string
}

// ConfigFromEnv reads Config, applying defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		SDSBaseURL:        strings.TrimSpace(getenv("SDS_BASE_URL")),
		MasterKeySecretID: strings.TrimSpace(getenv("MASTER_KEY_SECRET_ID")),
		ArchiveBucket:     strings.TrimSpace(getenv("ARCHIVE_BUCKET")),
		ArchivePrefix:     getenv("ARCHIVE_PREFIX"),
		ArchiveKMSKeyID:   strings.TrimSpace(getenv("ARCHIVE_KMS_KEY_ID")),
		SecretTTL:         masterkey.DefaultTTL,
		SDSTimeout:        sds.DefaultTimeout,
		FirstWait:         DefaultFirstWait,
		MaxWait:           DefaultMaxWait,
		JobDeadline:       DefaultJobDeadline,

		KeyOverridesSecretID: strings.TrimSpace(getenv("KEY_OVERRIDES_SECRET_ID")),
		CatalogPrefix:        strings.TrimSpace(getenv("CATALOG_PREFIX")),
		Filter:               nightly.Filter{Include: splitList(getenv("NIGHTLY_INCLUDE")), Exclude: splitList(getenv("NIGHTLY_EXCLUDE"))},

		GuardStateMachines: splitList(getenv("RETENTION_GUARD_STATE_MACHINES")),
		SummaryTopicARN:    strings.TrimSpace(getenv("SUMMARY_TOPIC_ARN")),
		SummaryOnSuccess:   true,
		StackName:          strings.TrimSpace(getenv("STACK_NAME")),
	}
	if v := strings.TrimSpace(getenv("SUMMARY_ON_SUCCESS")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("SUMMARY_ON_SUCCESS %q: want true or false", v)
		}
		c.SummaryOnSuccess = b
	}
	var keepDays, firstWait, maxWait, deadline, rpo, drillAge int
	for _, v := range []struct {
		name   string
		dst    *int
		lo, hi int
		want   string
	}{
		{"RETENTION_KEEP_VERSIONS", &c.Retention.KeepVersions, 0, 36500, "a whole number from 0 to 36500"},
		{"RETENTION_KEEP_DAYS", &keepDays, 0, 36500, "a whole number from 0 to 36500"},
		{"POLL_FIRST_WAIT_SECONDS", &firstWait, 1, 3600, "whole seconds from 1 to 3600"},
		{"POLL_MAX_WAIT_SECONDS", &maxWait, 1, 3600, "whole seconds from 1 to 3600"},
		{"JOB_DEADLINE_SECONDS", &deadline, 1, math.MaxInt, "a positive whole number of seconds"},
		// Checked with the other limits by WithDefaults.
		{"JOB_BUDGET", &c.Limits.Budget, math.MinInt, math.MaxInt, "a whole number"},
		{"JOB_CONCURRENCY", &c.Limits.Concurrency, math.MinInt, math.MaxInt, "a whole number"},
		{"RPO_HOURS", &rpo, 1, math.MaxInt, "whole hours, at least 1"},
		{"DRILL_PER_RUN", &c.Drill.PerRun, 1, drill.MaxDataSources, fmt.Sprintf("a whole number from 1 to %d", drill.MaxDataSources)},
		{"DRILL_MAX_AGE_DAYS", &drillAge, 1, math.MaxInt, "whole days, at least 1"},
	} {
		if s := strings.TrimSpace(getenv(v.name)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < v.lo || n > v.hi {
				return c, fmt.Errorf("%s %q: want %s", v.name, s, v.want)
			}
			*v.dst = n
		}
	}
	// Unset, a duration keeps its default.
	for _, d := range []struct {
		n    int
		unit time.Duration
		dst  *time.Duration
	}{
		{keepDays, 24 * time.Hour, &c.Retention.KeepFor},
		{firstWait, time.Second, &c.FirstWait},
		{maxWait, time.Second, &c.MaxWait},
		{deadline, time.Second, &c.JobDeadline},
		{rpo, time.Hour, &c.Limits.RPO},
		{drillAge, 24 * time.Hour, &c.Drill.MaxAge},
	} {
		if d.n != 0 {
			*d.dst = time.Duration(d.n) * d.unit
		}
	}
	if c.SDSBaseURL == "" {
		c.SDSBaseURL = sds.DefaultBaseURL
	}
	if c.ArchivePrefix == "" {
		c.ArchivePrefix = archive.DefaultPrefix
	}
	r, err := archive.ParseRetention(getenv("ARCHIVE_LOCK_MODE"), getenv("ARCHIVE_LOCK_DAYS"))
	if err != nil {
		return c, fmt.Errorf("ARCHIVE_LOCK_MODE, ARCHIVE_LOCK_DAYS: %w", err)
	}
	c.ArchiveRetention = r
	if v := getenv("SECRET_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("SECRET_CACHE_TTL %q: want a duration such as 5m", v)
		}
		c.SecretTTL = d
	}
	if v := getenv("SDS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("SDS_TIMEOUT %q: want a duration such as 30s", v)
		}
		c.SDSTimeout = d
	}
	if c.MaxWait < c.FirstWait {
		return c, errors.New("POLL_MAX_WAIT_SECONDS is below POLL_FIRST_WAIT_SECONDS")
	}
	if c.CatalogPrefix != "" && !strings.HasSuffix(c.CatalogPrefix, "/") {
		c.CatalogPrefix += "/"
	}
	if c.Limits, err = c.Limits.WithDefaults(); err != nil {
		return c, err
	}
	if err := c.Filter.Validate(); err != nil {
		return c, err
	}
	if _, err := sds.New(c.SDSBaseURL, "config-check"); err != nil {
		return c, fmt.Errorf("SDS_BASE_URL: %w", err)
	}
	// The key travels in the query string: plain http is for a local
	// emulator only, never across a network or through a proxy.
	if u, _ := url.Parse(c.SDSBaseURL); u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return c, fmt.Errorf("SDS_BASE_URL %q: the master key is only sent over https (http is allowed for loopback addresses)", c.SDSBaseURL)
	}
	return c, nil
}

// Env is what a function's dependencies are built from at cold start:
// the configuration, the AWS SDK configuration (AWS_REGION,
// AWS_ENDPOINT_URL, ...) and S3_USE_PATH_STYLE.
type Env struct {
	Config Config
	AWS    aws.Config
	Log    *slog.Logger
	s3     *s3.Client
}

// NewEnv reads the environment.
func NewEnv(ctx context.Context, log *slog.Logger) (*Env, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return &Env{Config: cfg, AWS: awsCfg, Log: log}, nil
}

// bucket is the archive bucket's S3 client; an error without ARCHIVE_BUCKET.
func (e *Env) bucket() (*s3.Client, error) {
	if e.Config.ArchiveBucket == "" {
		return nil, errors.New("ARCHIVE_BUCKET is not set")
	}
	if e.s3 == nil {
		pathStyle := strings.EqualFold(os.Getenv("S3_USE_PATH_STYLE"), "true")
		e.s3 = s3.NewFromConfig(e.AWS, func(o *s3.Options) { o.UsePathStyle = pathStyle })
	}
	return e.s3, nil
}

func (e *Env) archive() (*archive.Store, error) {
	client, err := e.bucket()
	if err != nil {
		return nil, err
	}
	a, err := archive.New(client, archive.Config{
		Bucket: e.Config.ArchiveBucket, Prefix: e.Config.ArchivePrefix, KMSKeyID: e.Config.ArchiveKMSKeyID,
		Retention: e.Config.ArchiveRetention,
	})
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return a, nil
}

// A Need builds one of a function's dependencies from the environment; a
// function's main package names its own (Start).
type Need func(*Env, *Deps) error

// The dependencies a function may need.
var (
	// NeedKeys: master keys from Secrets Manager, for operations that call SDS.
	NeedKeys Need = func(e *Env, d *Deps) error {
		d.Keys = masterkey.New(secretsmanager.NewFromConfig(e.AWS), e.Config.SecretTTL)
		return nil
	}
	// NeedArchive: the archive store that copies exports (ARCHIVE_BUCKET).
	NeedArchive Need = func(e *Env, d *Deps) (err error) {
		d.Archive, err = e.archive()
		return err
	}
	// NeedObjects: the archive bucket's objects, read and written directly.
	NeedObjects Need = func(e *Env, d *Deps) (err error) {
		d.Objects, err = e.bucket()
		return err
	}
	// NeedConverter: archives to GeoJSON (ARCHIVE_BUCKET).
	NeedConverter Need = func(e *Env, d *Deps) error {
		a, err := e.archive()
		if err != nil {
			return err
		}
		d.Converter = conversion.New(e.s3, a)
		return nil
	}
	// NeedCatalog: the catalog in the archive bucket, the key overrides
	// secret, and the metrics line on stdout.
	NeedCatalog Need = func(e *Env, d *Deps) error {
		client, err := e.bucket()
		if err != nil {
			return err
		}
		d.Catalog = catalog.New(client, e.Config.ArchiveBucket, e.Config.CatalogPrefix)
		d.Secrets = secretsmanager.NewFromConfig(e.AWS)
		d.Metrics = os.Stdout
		return nil
	}
	// NeedRetention: the archive bucket's objects to delete, and Step
	// Functions to see which data sources restores and drills are using.
	NeedRetention Need = func(e *Env, d *Deps) (err error) {
		d.Sweep, err = e.bucket()
		d.Executions = sfn.NewFromConfig(e.AWS)
		return err
	}
	// NeedNotifier: SNS, for the night's summary.
	NeedNotifier Need = func(e *Env, d *Deps) error {
		d.Notifier = sns.NewFromConfig(e.AWS)
		return nil
	}
)

// NewServiceFromEnv builds a Service with the dependencies needs build
// from e, and the SDS client's transport, timeout and logger.
func NewServiceFromEnv(e *Env, needs ...Need) (*Service, error) {
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
	d := Deps{Log: e.Log, SDS: []sds.Option{sds.WithHTTPClient(hc), sds.WithLogger(e.Log), sds.WithTimeout(e.Config.SDSTimeout)}}
	for _, need := range needs {
		if err := need(e, &d); err != nil {
			return nil, err
		}
	}
	return NewService(e.Config, d), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
