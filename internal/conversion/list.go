package conversion

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ListManifests returns up to max archive manifest keys under prefix,
// after startAfter, in key order, the key to start after next time, and
// whether the listing is complete. A prefix that does not start with the
// archive prefix is taken below it.
func (c *Converter) ListManifests(ctx context.Context, prefix, startAfter string, max int) (keys []string, next string, done bool, err error) {
	if !strings.HasPrefix(prefix, c.store.Prefix()) {
		prefix = c.store.Prefix() + strings.TrimPrefix(prefix, "/")
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
			if strings.HasSuffix(next, ".xml"+ManifestSuffix) {
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

// OwnedBy reports whether key lies under the archive prefix followed by
// dataSource ("<accessId>/<name>/"), the folder of one data source's
// archives.
func (c *Converter) OwnedBy(key, dataSource string) bool {
	return strings.HasPrefix(key, c.store.Prefix()+dataSource)
}
