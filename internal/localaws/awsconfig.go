package localaws

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// NewAWSConfig returns an SDK configuration for a local endpoint (moto, or a
// LambdaEndpoint/Stack in front of it): static test credentials, DefaultRegion and
// BaseEndpoint set to endpoint. It is built without reading the environment or
// ~/.aws, so a developer's real profile can neither leak in nor break it.
//
// S3 clients also need path-style addressing (bucket in the path, not the host name):
// use NewS3Client, or set s3.Options.UsePathStyle.
func NewAWSConfig(_ context.Context, endpoint string) (aws.Config, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return aws.Config{}, fmt.Errorf("localaws: endpoint %q is not an http(s) URL", endpoint)
	}
	return aws.Config{
		Region:       DefaultRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(
			func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "localaws"}, nil
			})),
	}, nil
}

// NewS3Client returns an S3 client for cfg with path-style addressing, which moto needs.
func NewS3Client(cfg aws.Config, optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, optFns...)...)
}
