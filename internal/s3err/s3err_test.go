package s3err_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/s3err"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The answers of a real S3 API (moto), not errors made up to match the
// classifier.
func TestClassifiesS3Answers(t *testing.T) {
	ctx := context.Background()
	api := testenv.S3(t)
	bucket := testenv.Bucket(t, api)
	put := func(key string, in *s3.PutObjectInput) error {
		in.Bucket, in.Key, in.Body = &bucket, &key, strings.NewReader("x")
		_, err := api.PutObject(ctx, in)
		return err
	}
	if err := put("there", &s3.PutObjectInput{}); err != nil {
		t.Fatal(err)
	}
	_, getMissing := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("missing")})
	_, headMissing := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("missing")})
	_, noBucket := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testenv.Name(t, "nobucket")), Key: aws.String("x")})
	exists := put("there", &s3.PutObjectInput{IfNoneMatch: aws.String("*")})
	stale := put("there", &s3.PutObjectInput{IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)})
	if err := put("frozen", &s3.PutObjectInput{StorageClass: types.StorageClassDeepArchive}); err != nil {
		t.Fatal(err)
	}
	_, getFrozen := api.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("frozen")})

	tests := []struct {
		name                  string
		err                   error
		notFound, precondFail bool
		archiveTier           bool
	}{
		{"GET of a missing key", getMissing, true, false, false},
		{"HEAD of a missing key", headMissing, true, false, false},
		{"GET in a missing bucket", noBucket, false, false, false},
		{"If-None-Match on an existing key", exists, false, true, false},
		{"If-Match with another ETag", stale, false, true, false},
		{"wrapped GET of a missing key", fmt.Errorf("catalog: %w", getMissing), true, false, false},
		{"GET of an object in DEEP_ARCHIVE", fmt.Errorf("restore: %w", getFrozen), false, false, true},
		{"no error", nil, false, false, false},
		{"an error that only says 404", errors.New("StatusCode: 404, NoSuchKey"), false, false, false},
		{"an error that only says InvalidObjectState", errors.New("InvalidObjectState"), false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil && tt.name != "no error" {
				t.Fatal("S3 accepted the request")
			}
			if got := s3err.NotFound(tt.err); got != tt.notFound {
				t.Errorf("NotFound = %v, want %v (%v)", got, tt.notFound, tt.err)
			}
			if got := s3err.PreconditionFailed(tt.err); got != tt.precondFail {
				t.Errorf("PreconditionFailed = %v, want %v (%v)", got, tt.precondFail, tt.err)
			}
			if got := s3err.InArchiveTier(tt.err); got != tt.archiveTier {
				t.Errorf("InArchiveTier = %v, want %v (%v)", got, tt.archiveTier, tt.err)
			}
		})
	}
}
