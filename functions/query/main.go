// Command query is the query Lambda function: the SDS Query API served
// from the newest verified archive of each data source, behind an API
// Gateway HTTP API ($default stage, so the SDS paths arrive unchanged).
//
// Environment: ARCHIVE_BUCKET, ARCHIVE_PREFIX, CATALOG_PREFIX,
// S3_USE_PATH_STYLE (as the other functions);
// QUERY_KEYS_SECRET_ID, a secret holding a queryapi.KeyConfig (key hashes
// only); QUERY_RECHECK, how often the catalog is read again (a Go
// duration, default 1m); QUERY_COPYRIGHT, the __copyright text.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/queryapi"
	"github.com/sdsops/sdsops/internal/queryarchive"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With(slog.String("function", "query"))
	slog.SetDefault(log)
	h, err := newHandler(context.Background(), os.Getenv, log)
	if err != nil {
		// Answer every request with SDS's 503 rather than crash-loop; the
		// log says why (never a key: the secret's content is not logged).
		log.Error("configuration", slog.String("error", err.Error()))
		h = unavailable{}
	}
	lambda.Start(queryapi.Lambda(h))
}

func newHandler(ctx context.Context, getenv func(string) string, log *slog.Logger) (http.Handler, error) {
	bucket := strings.TrimSpace(getenv("ARCHIVE_BUCKET"))
	secret := strings.TrimSpace(getenv("QUERY_KEYS_SECRET_ID"))
	if bucket == "" || secret == "" {
		return nil, errors.New("ARCHIVE_BUCKET and QUERY_KEYS_SECRET_ID must be set")
	}
	recheck := queryarchive.DefaultRecheck
	if s := strings.TrimSpace(getenv("QUERY_RECHECK")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, errors.New("QUERY_RECHECK must be a positive duration such as 1m")
		}
		recheck = d
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret)})
	if err != nil {
		return nil, errors.New("read the query key secret " + secret + ": " + err.Error())
	}
	keys, err := queryapi.ParseKeys([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		return nil, err
	}
	pathStyle := strings.EqualFold(getenv("S3_USE_PATH_STYLE"), "true") // as the other functions, for local S3
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
	return &queryapi.Handler{
		Catalog: &queryarchive.Catalog{
			Records: catalog.New(s3c, bucket, getenv("CATALOG_PREFIX")), Objects: s3c, Bucket: bucket, Prefix: getenv("ARCHIVE_PREFIX"),
			QueryKeys: keys.Query, Recheck: recheck, Log: log,
		},
		AccountKeys: keys.Account,
		MasterKeys:  keys.Master,
		Copyright:   getenv("QUERY_COPYRIGHT"),
		Log:         log,
	}, nil
}

// unavailable answers while the function is misconfigured.
type unavailable struct{}

func (unavailable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(&queryapi.Handler{Catalog: broken{}}).ServeHTTP(w, r)
}

type broken struct{}

func (broken) Source(context.Context, string, string) (*queryapi.Source, error) {
	return nil, errors.New("the query function is not configured")
}
