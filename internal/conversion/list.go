package conversion

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
)

// ListManifests returns up to max archive manifest keys under prefix,
// after startAfter, in key order, the key to start after next time, and
// whether the listing is complete. A prefix that does not start with the
// archive prefix is taken below it.
func (c *Converter) ListManifests(ctx context.Context, prefix, startAfter string, max int) (keys []string, next string, done bool, err error) {
	layout := c.store.Layout()
	prefix, err = layout.ListPrefix(prefix)
	if err != nil {
		return nil, "", false, classed(ErrInvalid, "list", err)
	}
	if startAfter != "" && (!strings.HasPrefix(startAfter, prefix) || len(startAfter) > archive.MaxKeyBytes) {
		return nil, "", false, classed(ErrInvalid, "list", fmt.Errorf("startAfter %.200q is not a key under %q", startAfter, prefix))
	}
	bucket := c.store.Bucket()
	next = startAfter
	for len(keys) < max {
		in := &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix}
		if next != "" {
			in.StartAfter = &next
		}
		out, err := c.api.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, "", false, classed(ErrStorage, fmt.Sprintf("list s3://%s/%s", bucket, prefix), err)
		}
		for _, o := range out.Contents {
			if o.Key == nil {
				continue
			}
			next = *o.Key
			if _, isManifest, err := layout.Parse(next); err == nil && isManifest {
				keys = append(keys, next)
				if len(keys) == max {
					break
				}
			}
		}
		if out.IsTruncated == nil || !*out.IsTruncated {
			if len(keys) < max || len(out.Contents) == 0 || next == *out.Contents[len(out.Contents)-1].Key {
				return keys, next, true, nil
			}
			return keys, next, false, nil
		}
	}
	return keys, next, false, nil
}

// Layout is the key layout of the archives converted.
func (c *Converter) Layout() archive.Layout { return c.store.Layout() }
