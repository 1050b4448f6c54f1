package task

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/sds"
)

// JobState is the chained state of a load, publish or rollback job: what
// restore (load), publish and rollback return and loadstatus reads and
// returns updated.
type JobState struct {
	Operation         string `json:"operation"` // load, publish or rollback
	DataSourceName    string `json:"dataSourceName"`
	AccessID          string `json:"accessId,omitempty"` // known once a load completes
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
	JobID             string `json:"jobId"`
	StatusURL         string `json:"statusUrl"`
	Status            string `json:"status"`
	RequestedAt       string `json:"requestedAt"`
	// ArchiveKey: the archive a load streams; an aborted load's failed
	// output is kept beside it, at FailedOutputKey.
	ArchiveKey           string `json:"archiveKey,omitempty"`
	TotalEntityCount     int64  `json:"totalEntityCount"`
	ProcessedEntityCount int64  `json:"processedEntityCount"`
	FailedEntityCount    int64  `json:"failedEntityCount"`
	ErrorMessage         string `json:"errorMessage,omitempty"`
	FailedOutputKey      string `json:"failedOutputKey,omitempty"`
	PollCount            int    `json:"pollCount"`
	NextWaitSeconds      int    `json:"nextWaitSeconds"`
	DeadlinePassed       bool   `json:"deadlinePassed"`
}

// LoadStatus reads the status of a load, publish or rollback job. A
// completed load or rollback names the data source's accessId (a data
// source created by the load has a new one); an aborted load's failed
// output is copied into S3 beside its archive.
func (s *Service) LoadStatus(ctx context.Context, raw []byte) (any, error) {
	var st JobState
	if err := decodeStrict(raw, &st); err != nil {
		return nil, err
	}
	if !slices.Contains([]string{OpLoad, OpPublish, OpRollback}, st.Operation) {
		return nil, invalid("field \"operation\" must be %q, %q or %q, got %q", OpLoad, OpPublish, OpRollback, truncate(st.Operation, 40))
	}
	if err := sds.ValidateName(st.DataSourceName); err != nil {
		return nil, invalid("field \"dataSourceName\": %v", err)
	}
	if err := validateJobID(st.JobID); err != nil {
		return nil, err
	}
	if err := validateSecretID(st.MasterKeySecretID); err != nil {
		return nil, err
	}
	if st.StatusURL == "" {
		return nil, invalid("field \"statusUrl\" is missing")
	}
	requested, err := parseStateTime("requestedAt", st.RequestedAt)
	if err != nil {
		return nil, err
	}
	if st.ArchiveKey != "" {
		// The failed entities of a load are kept beside its archive.
		if _, err := s.layout().ParseKey(st.ArchiveKey); err != nil {
			return nil, invalid("field \"archiveKey\": %v", err)
		}
	}
	err = s.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) error {
		job, err := c.JobStatus(ctx, st.StatusURL)
		if err != nil {
			return err
		}
		if !strings.EqualFold(job.ID, st.JobID) {
			return &Error{Type: JobAborted, Message: fmt.Sprintf("the status link reports job %s, not %s job %s", job.ID, st.Operation, st.JobID)}
		}
		st.Status = reportStatus(job.Status)
		st.TotalEntityCount, st.ProcessedEntityCount, st.FailedEntityCount = job.TotalEntityCount, job.ProcessedEntityCount, job.FailedEntityCount
		switch st.Status {
		case StatusCompleted:
			// A load must name the data source (its accessId may be new);
			// for publish and rollback the link is taken when given.
			ds, err := job.LoadedDataSource()
			switch {
			case err == nil:
				st.AccessID = ds.AccessID
			case st.Operation == OpLoad:
				return err
			}
		case StatusAborted:
			st.ErrorMessage = job.ErrorMessage
			if st.ErrorMessage == "" {
				st.ErrorMessage = "the service gave no error message"
			}
			if st.Operation == OpLoad && st.ArchiveKey != "" && job.FailedURL() != "" {
				key, err := s.keepFailed(ctx, c, job, st.ArchiveKey)
				if err != nil {
					return err
				}
				st.FailedOutputKey = key
				st.ErrorMessage += "; the failed entities are kept at s3://" + s.cfg.ArchiveBucket + "/" + key
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.PollCount++
	st.NextWaitSeconds, st.DeadlinePassed = 0, false
	if st.Status == StatusPending {
		st.NextWaitSeconds = s.nextWait(st.PollCount)
		st.DeadlinePassed = s.now().Sub(requested) > s.cfg.JobDeadline
	}
	return &st, nil
}

// keepFailed streams an aborted load's failed output into S3 beside the
// archive: <archive without .xml>.load-<jobId>.failed.xml (or .txt).
func (s *Service) keepFailed(ctx context.Context, c *sds.Client, job *sds.Job, archiveKey string) (string, error) {
	out, err := c.OpenFailedOutput(ctx, job)
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	ext, ctype := ".txt", "text/plain; charset=utf-8"
	if strings.Contains(out.ContentType, "xml") {
		ext, ctype = ".xml", "application/xml"
	}
	key := archive.Beside(archiveKey, ".load-"+strings.ToLower(job.ID)+".failed"+ext)
	in := &transfermanager.UploadObjectInput{Bucket: &s.cfg.ArchiveBucket, Key: &key, Body: out.Body, ContentType: &ctype}
	if kms := s.cfg.ArchiveKMSKeyID; kms != "" {
		in.ServerSideEncryption, in.SSEKMSKeyID = tmtypes.ServerSideEncryptionAwsKms, &kms
	} else {
		in.ServerSideEncryption = tmtypes.ServerSideEncryptionAes256
	}
	up := transfermanager.New(s.dep.Objects, func(o *transfermanager.Options) { o.Concurrency = 1 })
	if _, err := up.UploadObject(ctx, in); err != nil {
		return "", &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("keeping the failed output at s3://%s/%s: %v", s.cfg.ArchiveBucket, key, c.Redact(err.Error())), Err: err}
	}
	return key, nil
}
