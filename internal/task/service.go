package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/retention"
	"github.com/sdsops/sdsops/internal/sds"
)

// Keys supplies master keys by secret id.
type Keys interface {
	MasterKey(ctx context.Context, secretID string) (string, error)
	Forget(secretID string)
}

// Archiver copies an export into the archive.
type Archiver interface {
	Copy(ctx context.Context, req archive.Request, open archive.Opener) (archive.Result, error)
}

// ArchiveObjects is the part of S3 that restoring reads and writes
// directly: archives and manifests, and an aborted load's failed output
// kept beside its archive.
type ArchiveObjects = transfermanager.S3APIClient

// Deps are what the operations use beyond Config. A function is given
// only those of its own operation (the Needs its main package names, see
// Start), and the Service never changes after NewService.
type Deps struct {
	Keys      Keys           // every operation that calls SDS
	Archive   Archiver       // CopyToS3
	Objects   ArchiveObjects // Restore, LoadStatus, Inventory (archive lists), Record (manifests)
	Converter Converter      // Convert
	Catalog   *catalog.Store // Discover, Record, Inventory
	Secrets   SecretReader   // Discover: the key overrides secret
	Metrics   io.Writer      // Discover: its metrics lines (EMF), the heartbeat's among them; discarded when nil
	// Retention: the archive objects it lists, reads and deletes, and the
	// guard state machines' executions.
	Sweep      retention.S3
	Executions Executions
	Notifier   Notifier     // Report: the night's summary
	Log        *slog.Logger // discarded when nil
	SDS        []sds.Option // options of every SDS client
}

// Service holds what the operations share: configuration and their
// dependencies. Each operation is a method of it, in a file of its own; a
// Lambda function runs one of them.
type Service struct {
	cfg Config
	dep Deps
	now func() time.Time
	log *slog.Logger
}

// NewService wires a Service from cfg (zero durations mean the defaults)
// and d.
func NewService(cfg Config, d Deps) *Service {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = io.Discard
	}
	// Zero durations mean the defaults, so a partly filled Config is safe.
	if cfg.FirstWait <= 0 {
		cfg.FirstWait = DefaultFirstWait
	}
	if cfg.MaxWait < cfg.FirstWait {
		cfg.MaxWait = max(DefaultMaxWait, cfg.FirstWait)
	}
	if cfg.JobDeadline <= 0 {
		cfg.JobDeadline = DefaultJobDeadline
	}
	if cfg.Drill.PerRun <= 0 {
		cfg.Drill.PerRun = drill.DefaultPerRun
	}
	if cfg.Drill.MaxAge <= 0 {
		cfg.Drill.MaxAge = drill.DefaultMaxAge
	}
	return &Service{cfg: cfg, dep: d, now: time.Now, log: log}
}

// withSDS runs fn with a client holding the master key of secretID (the
// configured default when empty). When the service refuses the key, the
// cached key is dropped and fn runs once more with a freshly read one: a
// rotated secret is picked up without waiting for the cache to expire.
func (s *Service) withSDS(ctx context.Context, secretID string, fn func(*sds.Client) error) error {
	if secretID == "" {
		secretID = s.cfg.MasterKeySecretID
	}
	if secretID == "" {
		return &Error{Type: SecretNotFound, Message: "no master key secret: set MASTER_KEY_SECRET_ID or pass masterKeySecretId"}
	}
	key, err := s.dep.Keys.MasterKey(ctx, secretID)
	if err != nil {
		return err
	}
	c, err := s.client(secretID, key)
	if err != nil {
		return err
	}
	err = redacted(c, fn(c))
	if !errors.Is(err, sds.ErrUnauthorized) {
		return err
	}
	s.dep.Keys.Forget(secretID)
	fresh, ferr := s.dep.Keys.MasterKey(ctx, secretID)
	if ferr != nil {
		return ferr
	}
	if fresh == key {
		return err
	}
	s.log.InfoContext(ctx, "master key refused; retrying once with the secret's current value", slog.String("secretId", secretID))
	if c, err = s.client(secretID, fresh); err != nil {
		return err
	}
	return redacted(c, fn(c))
}

// client returns an SDS client for key. A key that cannot be sent as it is
// (too long, spaces, control characters) is a malformed secret.
func (s *Service) client(secretID, key string) (*sds.Client, error) {
	if err := sds.ValidateKey(key); err != nil {
		var se *sds.Error
		msg := err.Error()
		if errors.As(err, &se) {
			msg = se.Message
		}
		return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("secret %q holds no usable master key: %s", secretID, msg), Err: err}
	}
	return sds.New(s.cfg.SDSBaseURL, key, s.dep.SDS...)
}

// redacted gives err a message without c's key: the service may echo the
// key in any text it sends, and errors become causes, results and logs.
func redacted(c *sds.Client, err error) error {
	if err == nil {
		return nil
	}
	e := classify(err)
	if clean := c.Redact(e.Message); clean != e.Message {
		return &Error{Type: e.Type, Message: clean, Err: err}
	}
	return err
}

// nextWait is the wait before the check after the polls-th one: FirstWait
// doubled per check, capped at MaxWait.
func (s *Service) nextWait(polls int) int {
	w := s.cfg.FirstWait.Seconds() * math.Pow(2, float64(polls))
	return int(math.Min(w, s.cfg.MaxWait.Seconds()))
}
