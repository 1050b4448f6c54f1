package localaws

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestAWSThroughEndpoint: SDK clients work against moto directly and through the Lambda
// endpoint's pass-through, including S3 keys that a path-cleaning router would mangle.
func TestAWSThroughEndpoint(t *testing.T) {
	st := sharedStack(t)
	ctx := t.Context()
	for _, target := range []struct{ name, endpoint string }{
		{"moto", st.Moto.Endpoint()},
		{"endpoint", st.Endpoint()},
	} {
		t.Run(target.name, func(t *testing.T) {
			cfg, err := NewAWSConfig(ctx, target.endpoint)
			if err != nil {
				t.Fatal(err)
			}
			s3c := NewS3Client(cfg)
			bucket := uniqueName("sdsops-test-" + target.name)
			if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"plain.txt", "a//b/../c.txt", "dir/with space+plus?.txt"} {
				body := []byte("content of " + key)
				if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
					t.Fatalf("put %q: %v", key, err)
				}
				got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
				if err != nil {
					t.Fatalf("get %q: %v", key, err)
				}
				b, _ := io.ReadAll(got.Body)
				got.Body.Close()
				if !bytes.Equal(b, body) {
					t.Errorf("get %q = %q", key, b)
				}
			}
			presigned, err := s3.NewPresignClient(s3c).PresignGetObject(ctx,
				&s3.GetObjectInput{Bucket: &bucket, Key: aws.String("plain.txt")}, s3.WithPresignExpires(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(presigned.URL)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "content of plain.txt" {
				t.Errorf("presigned GET: %s %q", resp.Status, b)
			}

			sm := secretsmanager.NewFromConfig(cfg)
			name := uniqueName("sdsops/key-" + target.name)
			if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: aws.String("v1")}); err != nil {
				t.Fatal(err)
			}
			v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &name})
			if err != nil || aws.ToString(v.SecretString) != "v1" {
				t.Errorf("get secret: %v %v", v, err)
			}
		})
	}
	if _, err := NewAWSConfig(ctx, "127.0.0.1:4566"); err == nil {
		t.Error("NewAWSConfig accepted an endpoint without scheme")
	}
}
