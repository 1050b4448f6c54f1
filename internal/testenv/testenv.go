// Package testenv is the set-up shared by the tests that need AWS: one
// moto_server per test binary, started by the first test that asks for it
// (fuzz workers and tests that need no AWS never start it) and stopped after
// the last, and checks that must follow every test of a package.
//
// A package's TestMain is
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// or, with checks that scan what all the tests left behind,
//
//	func TestMain(m *testing.M) { testenv.Main(m, scanForKeys) }
//
// Only tests import this package.
package testenv

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/localaws"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

var (
	motoOnce sync.Once
	moto     *localaws.Moto
	motoCfg  aws.Config
	motoErr  error
	seq      atomic.Int64
)

// Main runs the tests, then each check in order (a check's error fails the
// run as a failed test would, and is printed), stops the shared moto_server
// if a test started it, and exits with the run's status.
func Main(m *testing.M, checks ...func() error) {
	code := m.Run()
	for _, check := range checks {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL (after all tests):", err)
			code = 1
		}
	}
	if moto != nil {
		moto.Stop()
	}
	os.Exit(code)
}

// AWS returns the SDK configuration for the shared moto_server, starting it
// on first use. tb fails when moto cannot start: a test that did not run
// must not pass.
func AWS(tb testing.TB) aws.Config {
	tb.Helper()
	motoOnce.Do(func() {
		ctx := context.Background()
		moto, motoErr = localaws.StartMoto(ctx, localaws.MotoOptions{})
		if motoErr == nil {
			motoCfg, motoErr = localaws.NewAWSConfig(ctx, moto.Endpoint())
		}
	})
	if motoErr != nil {
		tb.Fatalf("moto: %v", motoErr)
	}
	return motoCfg
}

// Endpoint is the shared moto_server's URL, started on first use.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	AWS(tb)
	return moto.Endpoint()
}

// S3 returns an S3 client of the shared moto_server (path-style).
func S3(tb testing.TB) *s3.Client {
	tb.Helper()
	return localaws.NewS3Client(AWS(tb))
}

// Secrets returns a Secrets Manager client of the shared moto_server.
func Secrets(tb testing.TB) *secretsmanager.Client {
	tb.Helper()
	return secretsmanager.NewFromConfig(AWS(tb))
}

// Name returns a name no other call in this test binary returned, made of
// prefix and tb's name in the characters S3 bucket names allow, at most 60
// long.
func Name(tb testing.TB, prefix string) string {
	base := strings.Trim(strings.ToLower(nonName.ReplaceAllString(tb.Name(), "-")), "-")
	n := fmt.Sprintf("%s%d-%s", prefix, seq.Add(1), base)
	return strings.TrimRight(n[:min(len(n), 60)], "-")
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Bucket creates a bucket of tb's own in the shared moto_server and returns
// its name.
func Bucket(tb testing.TB, api *s3.Client) string {
	tb.Helper()
	name := Name(tb, "b")
	if _, err := api.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		tb.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// LockedBucket creates a bucket of tb's own with S3 Object Lock enabled
// (and so versioning, which Object Lock requires) and returns its name.
// Objects stored there with a retention cannot be removed by the tests:
// each test gets a new bucket.
func LockedBucket(tb testing.TB, api *s3.Client) string {
	tb.Helper()
	name := Name(tb, "l")
	in := &s3.CreateBucketInput{Bucket: &name, ObjectLockEnabledForBucket: aws.Bool(true)}
	if _, err := api.CreateBucket(context.Background(), in); err != nil {
		tb.Fatalf("create bucket %s with object lock: %v", name, err)
	}
	return name
}

// Emulator serves an SDS emulator configured by cfg over real HTTP on a
// loopback port until tb ends.
func Emulator(tb testing.TB, cfg sdsemu.Config) (*sdsemu.Server, *httptest.Server) {
	tb.Helper()
	emu, err := sdsemu.New(cfg)
	if err != nil {
		tb.Fatalf("emulator: %v", err)
	}
	srv := httptest.NewServer(emu)
	tb.Cleanup(srv.Close)
	return emu, srv
}
