package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/query/querytest"
	"github.com/sdsops/sdsops/internal/queryapi"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The function, configured as deployed, answers from the verified archive
// with the keys of its secret; misconfigured, it answers SDS's 503.
func TestFunction(t *testing.T) {
	ctx := context.Background()
	api := testenv.S3(t)
	bucket := testenv.Bucket(t, api)
	export := querytest.CoffeeShops()
	key := "sds-exports/" + querytest.AccessID + "/" + querytest.Name + "/job1.xml"
	if _, err := api.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(export)}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(export))
	id := catalog.ID{AccessID: querytest.AccessID, Name: querytest.Name}
	if _, err := catalog.New(api, bucket, "").Update(ctx, id, func(r *catalog.Record) error {
		r.Verified(catalog.Archive{Version: "job1", At: time.Now(), ArchiveKey: key, SHA256: hex.EncodeToString(sum[:]), EntityCount: 22})
		return nil
	}); err != nil && !errors.Is(err, catalog.ErrIndexNotUpdated) {
		t.Fatal(err)
	}
	h := queryapi.HashKey("app-key")
	secret := testenv.Name(t, "keys")
	if _, err := testenv.Secrets(t).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &secret,
		SecretString: aws.String(`{"accountKeyHashes":["` + hex.EncodeToString(h[:]) + `"]}`)}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"AWS_ENDPOINT_URL": testenv.Endpoint(t), "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"S3_USE_PATH_STYLE": "true", "ARCHIVE_BUCKET": bucket, "QUERY_KEYS_SECRET_ID": secret,
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	handler, err := newHandler(ctx, func(k string) string { return env[k] }, log)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.APIGatewayV2HTTPRequest{
		RawPath:        "/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/" + querytest.EntityType,
		RawQueryString: "spatialFilter=nearby(40.83274904439099,-74.3163299560546935,5)&$select=EntityID&$top=3&$format=json&key=app-key",
		Headers:        map[string]string{"host": "q.example.com", "x-forwarded-proto": "https"},
	}
	ev.RequestContext.HTTP.Method = "GET"
	resp, _ := queryapi.Lambda(handler)(ctx, ev)
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"EntityID":"-8051"`) {
		t.Errorf("%d %s", resp.StatusCode, resp.Body)
	}
	ev.RawQueryString = strings.Replace(ev.RawQueryString, "app-key", "wrong", 1)
	if resp, _ := queryapi.Lambda(handler)(ctx, ev); resp.StatusCode != 401 {
		t.Errorf("wrong key: %d", resp.StatusCode)
	}
	if _, err := newHandler(ctx, func(k string) string { return map[string]string{"ARCHIVE_BUCKET": bucket}[k] }, log); err == nil {
		t.Error("no key secret configured, yet a handler")
	}
	if resp, _ := queryapi.Lambda(unavailable{})(ctx, ev); resp.StatusCode != 503 {
		t.Errorf("misconfigured: %d", resp.StatusCode)
	}
}
