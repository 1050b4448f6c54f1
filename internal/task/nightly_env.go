package task

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
)

// NightlyConfigFromEnv reads NightlyConfig: MASTER_KEY_SECRET_ID,
// KEY_OVERRIDES_SECRET_ID, ARCHIVE_BUCKET, ARCHIVE_PREFIX, CATALOG_PREFIX,
// JOB_BUDGET, JOB_CONCURRENCY, RPO_HOURS, and the filter NIGHTLY_INCLUDE /
// NIGHTLY_EXCLUDE (comma separated patterns: name or accessId/name).
func NightlyConfigFromEnv(getenv func(string) string) (NightlyConfig, error) {
	c := NightlyConfig{
		DefaultSecretID:   strings.TrimSpace(getenv("MASTER_KEY_SECRET_ID")),
		OverridesSecretID: strings.TrimSpace(getenv("KEY_OVERRIDES_SECRET_ID")),
		Bucket:            strings.TrimSpace(getenv("ARCHIVE_BUCKET")),
		ArchivePrefix:     getenv("ARCHIVE_PREFIX"),
		CatalogPrefix:     strings.TrimSpace(getenv("CATALOG_PREFIX")),
		Filter:            nightly.Filter{Include: splitList(getenv("NIGHTLY_INCLUDE")), Exclude: splitList(getenv("NIGHTLY_EXCLUDE"))},
	}
	if c.ArchivePrefix == "" {
		c.ArchivePrefix = "sds-exports/"
	}
	if c.CatalogPrefix != "" && !strings.HasSuffix(c.CatalogPrefix, "/") {
		c.CatalogPrefix += "/"
	}
	if c.Bucket == "" {
		return c, fmt.Errorf("ARCHIVE_BUCKET is not set")
	}
	for _, v := range []struct {
		name string
		dst  *int
	}{{"JOB_BUDGET", &c.Limits.Budget}, {"JOB_CONCURRENCY", &c.Limits.Concurrency}} {
		if s := getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return c, fmt.Errorf("%s %q: want a whole number", v.name, s)
			}
			*v.dst = n
		}
	}
	if s := getenv("RPO_HOURS"); s != "" {
		h, err := strconv.Atoi(s)
		if err != nil || h < 1 {
			return c, fmt.Errorf("RPO_HOURS %q: want whole hours, at least 1", s)
		}
		c.Limits.RPO = time.Duration(h) * time.Hour
	}
	var err error
	if c.Limits, err = c.Limits.WithDefaults(); err != nil {
		return c, err
	}
	return c, c.Filter.Validate()
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

// StartNightly runs discover, record or inventory under the Lambda runtime.
func StartNightly(function string, pick func(*Nightly) Func) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	slog.SetDefault(log.With(slog.String("function", function)))
	n, r, err := newNightlyFromEnv(context.Background(), log)
	if err != nil {
		log.Error("configuration", slog.String("function", function), slog.String("error", err.Error()))
		lambda.Start(func(context.Context, json.RawMessage) (any, error) {
			return nil, LambdaError(&Error{Type: Internal, Message: "configuration: " + err.Error()})
		})
		return
	}
	lambda.StartHandler(r.Handler(function, pick(n)))
}

func newNightlyFromEnv(ctx context.Context, log *slog.Logger) (*Nightly, *Runner, error) {
	cfg, err := NightlyConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	r, err := NewRunnerFromEnv(ctx, log, false)
	if err != nil {
		return nil, nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("AWS configuration: %w", err)
	}
	pathStyle := strings.EqualFold(os.Getenv("S3_USE_PATH_STYLE"), "true")
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
	store := catalog.New(client, cfg.Bucket, cfg.CatalogPrefix)
	return NewNightly(r, cfg, store, client, secretsmanager.NewFromConfig(awsCfg), os.Stdout), r, nil
}
