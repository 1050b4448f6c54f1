package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ScratchMark notes a restore drill's scratch data source, written before
// its load: a drill interrupted before it deleted the scratch data source
// leaves the mark, by which the next drill run knows the data source is
// its own to delete. A data source with the scratch prefix and no mark is
// never touched.
type ScratchMark struct {
	Name   string    `json:"name"`   // the scratch data source's
	Source ID        `json:"source"` // the data source drilled
	At     time.Time `json:"at"`
}

func (s *Store) scratchDir() string { return s.prefix + "catalog/v1/drills/" }

// ScratchMarkKey is the S3 key of the mark of scratch data source name.
func (s *Store) ScratchMarkKey(name string) string {
	return s.scratchDir() + strings.ToLower(name) + ".json"
}

// MarkScratch writes m.
func (s *Store) MarkScratch(ctx context.Context, m ScratchMark) error {
	return s.putMark(ctx, s.ScratchMarkKey(m.Name), m)
}

// ScratchMarks lists the marks left; an unreadable one is skipped (its
// data source is then left alone).
func (s *Store) ScratchMarks(ctx context.Context) ([]ScratchMark, error) {
	dir := s.scratchDir()
	var out []ScratchMark
	p := s3.NewListObjectsV2Paginator(s.api, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &dir})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("catalog: list %s: %w", dir, err)
		}
		for _, o := range page.Contents {
			data, _, err := s.get(ctx, aws.ToString(o.Key))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("catalog: read %s: %w", aws.ToString(o.Key), err)
			}
			var m ScratchMark
			if json.Unmarshal(data, &m) != nil || s.ScratchMarkKey(m.Name) != aws.ToString(o.Key) {
				continue
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// UnmarkScratch removes the mark of name, once its data source is gone.
func (s *Store) UnmarkScratch(ctx context.Context, name string) error {
	key := s.ScratchMarkKey(name)
	if _, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return fmt.Errorf("catalog: delete %s: %w", key, err)
	}
	return nil
}
