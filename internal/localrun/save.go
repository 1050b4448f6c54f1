package localrun

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
)

// DefaultSaveDir is where make run and make up leave the archives: a
// folder a GIS opens directly (the .geojson files).
const DefaultSaveDir = "local-archive"

// Save copies the archive bucket's objects whose keys start with prefix
// into dir, under their keys, and returns the paths written in key order.
// An archive is saved with its manifest, GeoJSON, GeoParquet and schema
// document.
func (e *Env) Save(ctx context.Context, dir, prefix string) ([]string, error) {
	var paths []string
	p := s3.NewListObjectsV2Paginator(e.S3, &s3.ListObjectsV2Input{Bucket: aws.String(e.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return paths, err
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			path := filepath.Join(dir, filepath.FromSlash(key))
			// Keys come from our own bucket, but a key with .. must
			// still not write outside dir.
			if rel, err := filepath.Rel(dir, path); err != nil || strings.HasPrefix(rel, "..") {
				return paths, fmt.Errorf("key %q leaves %s", key, dir)
			}
			if err := e.saveObject(ctx, key, path); err != nil {
				return paths, err
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}

func (e *Env) saveObject(ctx context.Context, key, path string) error {
	out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, out.Body); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", key, err)
	}
	return f.Close()
}

// Mirror keeps dir a copy of the archive bucket until ctx ends: every
// interval it saves the objects that are new or changed since the last
// look, and calls saved with each path written.
func (e *Env) Mirror(ctx context.Context, dir string, interval time.Duration, saved func(path string)) {
	seen := map[string]string{} // key → ETag saved
	for {
		p := s3.NewListObjectsV2Paginator(e.S3, &s3.ListObjectsV2Input{Bucket: aws.String(e.Bucket)})
		for p.HasMorePages() && ctx.Err() == nil {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, o := range page.Contents {
				key, etag := aws.ToString(o.Key), aws.ToString(o.ETag)
				// A copy's claim on its job exists only while it runs.
				if seen[key] == etag || strings.HasSuffix(key, archive.ClaimSuffix) {
					continue
				}
				path := filepath.Join(dir, filepath.FromSlash(key))
				if rel, err := filepath.Rel(dir, path); err != nil || strings.HasPrefix(rel, "..") {
					continue
				}
				if e.saveObject(ctx, key, path) == nil {
					seen[key] = etag
					saved(path)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
