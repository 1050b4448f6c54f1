// Package s3err tells apart the S3 answers sdsops acts on, from the SDK's
// typed errors: the error codes S3 sends and the HTTP status of the
// response, never the error's text.
package s3err

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// NotFound reports S3's answer that an object (or the version asked for)
// does not exist: NoSuchKey to a GET, NotFound to a HEAD, which has no
// body and so only its status, 404. A missing bucket is not a missing
// object: it is a configuration fault, and taking it for "nothing stored
// yet" would hide it (a GET says NoSuchBucket; a HEAD cannot tell).
func NotFound(err error) bool {
	if err == nil || Code(err) == "NoSuchBucket" {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	if c := Code(err); c == "NoSuchKey" || c == "NotFound" {
		return true
	}
	return Status(err) == http.StatusNotFound
}

// PreconditionFailed reports S3's answer to a conditional request
// (If-Match, If-None-Match) whose condition did not hold, or that raced
// another conditional write of the same key.
func PreconditionFailed(err error) bool {
	if err == nil {
		return false
	}
	if c := Code(err); c == "PreconditionFailed" || c == "ConditionalRequestConflict" {
		return true
	}
	return Status(err) == http.StatusPreconditionFailed
}

// InArchiveTier reports S3's answer to reading an object in an archive
// storage class (GLACIER, DEEP_ARCHIVE, or INTELLIGENT_TIERING's archive
// access tiers) that has not been restored: InvalidObjectState. Reading it
// again will not help; an S3 restore of the object will.
func InArchiveTier(err error) bool { return Code(err) == "InvalidObjectState" }

// Code is the error code S3 answered with ("" when it did not answer).
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Status is the HTTP status of S3's answer (0 when there was none).
func Status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
