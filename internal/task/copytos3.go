package task

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/sds"
)

// CopyResult is what CopyToS3 adds to the chained state: the archive.
type CopyResult struct {
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	ManifestKey string `json:"manifestKey"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
	EntityCount int64  `json:"entityCount"`
	Reused      bool   `json:"reused"`
	Verified    bool   `json:"verified"`
}

// CopyToS3 streams a completed download job's export into the archive.
func (s *Service) CopyToS3(ctx context.Context, raw []byte) (any, error) {
	st, err := decodeChainedState(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Operation != OpDownload:
		return nil, invalid("field \"operation\" must be %q for a copy, got %q", OpDownload, truncate(st.Operation, 40))
	case st.Status != StatusCompleted:
		return nil, invalid("field \"status\" must be %q for a copy, got %q", StatusCompleted, truncate(st.Status, 40))
	case st.DownloadURL == "":
		return nil, invalid("field \"downloadUrl\" is missing")
	}
	if err := validateJobID(st.JobID); err != nil {
		return nil, err
	}
	if st.VersionJobID != "" {
		if err := validateJobID(st.VersionJobID); err != nil {
			return nil, err
		}
	}
	created, err := parseStateTime("createdDate", st.CreatedDate)
	if err != nil {
		return nil, err
	}
	if created.Year() < 2000 {
		return nil, invalid("field \"createdDate\" %q is not a download job's creation time", st.CreatedDate)
	}
	expected := int64(dataset.NoTotal)
	if st.TotalEntityCount != nil {
		if expected = *st.TotalEntityCount; expected < 0 {
			return nil, invalid("field \"totalEntityCount\" must not be negative, got %d", expected)
		}
	}
	started := created
	if st.StartedAt != "" {
		if started, err = parseStateTime("startedAt", st.StartedAt); err != nil {
			return nil, err
		}
	}
	req := archive.Request{
		AccessID:         st.AccessID,
		DataSourceName:   st.DataSourceName,
		JobID:            st.JobID,
		VersionJobID:     st.VersionJobID,
		Staging:          st.IsStaging,
		JobCreated:       created,
		ExpectedEntities: expected,
		StartedAt:        started,
	}
	var res archive.Result
	err = s.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) (err error) {
		// The link is checked before the archive is looked at: an event
		// that could not be copied is refused also when the job is
		// archived already.
		if err := c.CheckExportURL(st.DownloadURL); err != nil {
			return err
		}
		req.Redact = c.Redact
		res, err = s.dep.Archive.Copy(ctx, req, func(ctx context.Context) (archive.Export, error) {
			return archiveExport(c.OpenExportURL(ctx, st.DownloadURL))
		})
		if errors.Is(err, archive.ErrUnverified) {
			return &Error{Type: ArchiveUnverified, Err: err, Message: fmt.Sprintf(
				"the export is archived at s3://%s/%s with its manifest %s, but not verified: %s",
				res.Bucket, res.Key, res.ManifestKey, strings.Join(res.Problems, "; "))}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return st.output(CopyResult{
		Bucket:      res.Bucket,
		Key:         res.Key,
		ManifestKey: res.ManifestKey,
		Bytes:       res.Bytes,
		SHA256:      res.SHA256,
		EntityCount: res.EntityCount,
		Reused:      res.Reused,
		Verified:    res.Verified,
	})
}

// archiveExport hands an SDS export to the archive as plain values: the
// XML stream, its announced length, how a packed delivery was received,
// and which read errors mean a corrupt packing.
func archiveExport(exp *sds.Export, err error) (archive.Export, error) {
	if err != nil || exp == nil {
		return archive.Export{}, err
	}
	out := archive.Export{Body: exp.Body, Length: exp.ContentLength,
		Corrupt: func(err error) bool { return errors.Is(err, sds.ErrDecode) }}
	if exp.Delivery != nil {
		out.Delivery = func() *archive.DeliveryRecord {
			d := exp.Delivery // complete once Body has ended
			return &archive.DeliveryRecord{Encoding: d.Encoding, ContentType: d.ContentType, Bytes: d.Bytes, SHA256: d.SHA256, Entry: d.Entry}
		}
	}
	return out, nil
}
