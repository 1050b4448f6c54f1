package task_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/task"
	"github.com/sdsops/sdsops/internal/testenv"
)

// The emulator's sample account.
const (
	masterKey = "sdsemu-master-key-fourthcoffee"
	accessID  = "20181f26d9e94c81acdf9496133d4f23"
	coffee    = "FourthCoffeeSample"
)

// The shared moto_server's clients (testenv starts it on first use), set by
// newFixture.
var (
	smClient     *secretsmanager.Client
	s3Client     *s3.Client
	motoEndpoint string
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is one test's world: an emulator, a secret, a bucket and a
// runner wired to them, with every output, error and log line kept so that
// a test can look for leaked keys.
type fixture struct {
	t        *testing.T
	emu      *sdsemu.Server
	srv      *httptest.Server
	secretID string
	bucket   string
	runner   *task.Service
	logs     *syncBuffer
	mu       sync.Mutex
	seen     []string // every result and error text
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var names sync.Map

// unique returns a name unused in this moto, derived from the test name.
func unique(t *testing.T, prefix string) string {
	base := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	for i := 0; ; i++ {
		n := fmt.Sprintf("%s-%s-%d", prefix, base, i)
		if len(n) > 60 {
			n = fmt.Sprintf("%s-%x-%d", prefix, sha256.Sum256([]byte(base)), i)[:60]
		}
		if _, taken := names.LoadOrStore(n, true); !taken {
			return n
		}
	}
}

func newFixture(t *testing.T, secretValue string, tweak func(*sdsemu.Config), opts ...sds.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	cfg := sdsemu.DefaultConfig()
	cfg.Manual = true
	if tweak != nil {
		tweak(&cfg)
	}
	emu, srv := testenv.Emulator(t, cfg)
	smClient, s3Client, motoEndpoint = testenv.Secrets(t), testenv.S3(t), testenv.Endpoint(t)

	f := &fixture{t: t, emu: emu, srv: srv, logs: &syncBuffer{}}
	f.secretID = "sdsops/" + unique(t, "key")
	if secretValue != "" {
		if _, err := smClient.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(f.secretID), SecretString: aws.String(secretValue)}); err != nil {
			t.Fatal(err)
		}
	}
	f.bucket = unique(t, "b")
	if _, err := s3Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(f.bucket)}); err != nil {
		t.Fatal(err)
	}
	store, err := archive.New(s3Client, archive.Config{Bucket: f.bucket, Prefix: "sds-exports/", PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tc := task.Config{SDSBaseURL: srv.URL, MasterKeySecretID: f.secretID, ArchiveBucket: f.bucket, ArchivePrefix: "sds-exports/",
		SecretTTL: time.Minute, FirstWait: 15 * time.Second, MaxWait: 15 * time.Minute}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.runner = task.NewService(tc, task.Deps{Keys: masterkey.New(smClient, time.Minute), Archive: store, Objects: s3Client, Log: log,
		Catalog: catalog.New(s3Client, f.bucket, ""), Converter: conversion.New(s3Client, store),
		SDS: append([]sds.Option{sds.WithRetry(sds.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxRetryAfter: time.Second}),
			sds.WithLogger(log)}, opts...)})
	t.Cleanup(f.checkNoKeyLeaked)
	return f
}

// invoke runs a function through aws-lambda-go's handler invocation path,
// as the Lambda runtime would, and returns its JSON result or error type.
func (f *fixture) invoke(function string, event any) (out map[string]any, errType, errMsg string) {
	f.t.Helper()
	return f.invokeCtx(context.Background(), function, event)
}

// invokeCtx is invoke with the runtime's context, such as one with the
// deadline Lambda gives an invocation.
func (f *fixture) invokeCtx(ctx context.Context, function string, event any) (out map[string]any, errType, errMsg string) {
	f.t.Helper()
	var fn task.Func
	switch function {
	case "startdownload":
		fn = f.runner.StartDownload
	case "checkstatus":
		fn = f.runner.CheckStatus
	case "copytos3":
		fn = f.runner.CopyToS3
	case "delete":
		fn = f.runner.Delete
	case "setpublic":
		fn = f.runner.SetPublic
	case "restore":
		fn = f.runner.Restore
	case "publish":
		fn = f.runner.Publish
	case "rollback":
		fn = f.runner.Rollback
	case "loadstatus":
		fn = f.runner.LoadStatus
	case "convert":
		fn = f.runner.Convert
	default:
		f.t.Fatalf("unknown function %s", function)
	}
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			f.t.Fatal(err)
		}
	}
	res, err := lambda.NewHandler(f.runner.Handler(function, fn)).Invoke(ctx, payload)
	if err != nil {
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) {
			f.t.Fatalf("%s returned a %T, not a typed Lambda error: %v", function, err, err)
		}
		f.see(ie.Type + ": " + ie.Message)
		return nil, ie.Type, ie.Message
	}
	f.see(string(res))
	if err := json.Unmarshal(res, &out); err != nil {
		f.t.Fatalf("%s result is not a JSON object: %s", function, res)
	}
	return out, "", ""
}

// see keeps a result or error text for checkNoKeyLeaked; invocations may
// run concurrently.
func (f *fixture) see(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, s)
}

func (f *fixture) mustInvoke(function string, event any) map[string]any {
	f.t.Helper()
	out, typ, msg := f.invoke(function, event)
	if typ != "" {
		f.t.Fatalf("%s failed: %s: %s", function, typ, msg)
	}
	return out
}

func (f *fixture) checkNoKeyLeaked() {
	f.mu.Lock()
	all := strings.Join(f.seen, "\n") + f.logs.String()
	f.mu.Unlock()
	for _, form := range []string{masterKey, url.QueryEscape(masterKey), "old-wrong-key"} {
		if strings.Contains(all, form) {
			f.t.Errorf("a master key appears in a result, error or log line")
		}
	}
}

func (f *fixture) completeJobs() {
	for _, j := range f.emu.Jobs() {
		if j.Status == "Pending" {
			f.emu.CompleteJob(j.ID)
		}
	}
}

func startEvent() map[string]any {
	return map[string]any{"accessId": accessID, "dataSourceName": coffee}
}

// backupToCompleted runs startdownload and polls until Completed.
func (f *fixture) backupToCompleted() map[string]any {
	f.t.Helper()
	st := f.mustInvoke("startdownload", startEvent())
	st = f.mustInvoke("checkstatus", st)
	if st["status"] != "Pending" {
		f.t.Fatalf("first check: %v", st["status"])
	}
	f.completeJobs()
	st = f.mustInvoke("checkstatus", st)
	if st["status"] != "Completed" {
		f.t.Fatalf("after completion: %v", st)
	}
	return st
}

func getObject(t *testing.T, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := s3Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func objectCount(t *testing.T, bucket string) (objects, uploads int) {
	t.Helper()
	ctx := context.Background()
	l, err := s3Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s3Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Contents), len(m.Uploads)
}
