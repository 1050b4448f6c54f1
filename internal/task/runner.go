package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/sds"
)

// Config is the functions' configuration, read from the environment.
type Config struct {
	SDSBaseURL        string        // SDS_BASE_URL: the only host that ever receives a key
	MasterKeySecretID string        // MASTER_KEY_SECRET_ID: default secret (name or ARN)
	ArchiveBucket     string        // ARCHIVE_BUCKET
	ArchivePrefix     string        // ARCHIVE_PREFIX
	ArchiveKMSKeyID   string        // ARCHIVE_KMS_KEY_ID: SSE-KMS when set, SSE-S3 otherwise
	SecretTTL         time.Duration // SECRET_CACHE_TTL (Go duration)
	// SDSTimeout bounds each SDS request until its headers arrive, and
	// each silence while its body streams (SDS_TIMEOUT, Go duration;
	// default 30 s). A download's body may take longer in all.
	SDSTimeout time.Duration
	// Poll backoff: the first wait, doubled after every check up to MaxWait.
	FirstWait time.Duration // POLL_FIRST_WAIT_SECONDS
	MaxWait   time.Duration // POLL_MAX_WAIT_SECONDS
	// JobDeadline is how long a job may stay pending before checkstatus
	// reports deadlinePassed (JOB_DEADLINE_SECONDS; default 13 h, an hour
	// past the documented worst case of 12 h).
	JobDeadline time.Duration
}

// ConfigFromEnv reads Config, applying defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		SDSBaseURL:        strings.TrimSpace(getenv("SDS_BASE_URL")),
		MasterKeySecretID: strings.TrimSpace(getenv("MASTER_KEY_SECRET_ID")),
		ArchiveBucket:     strings.TrimSpace(getenv("ARCHIVE_BUCKET")),
		ArchivePrefix:     getenv("ARCHIVE_PREFIX"),
		ArchiveKMSKeyID:   strings.TrimSpace(getenv("ARCHIVE_KMS_KEY_ID")),
		SecretTTL:         masterkey.DefaultTTL,
		SDSTimeout:        30 * time.Second,
		FirstWait:         15 * time.Second,
		MaxWait:           15 * time.Minute,
		JobDeadline:       13 * time.Hour,
	}
	if c.SDSBaseURL == "" {
		c.SDSBaseURL = sds.DefaultBaseURL
	}
	if c.ArchivePrefix == "" {
		c.ArchivePrefix = "sds-exports/"
	}
	if v := getenv("SECRET_CACHE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("SECRET_CACHE_TTL %q: want a duration such as 5m", v)
		}
		c.SecretTTL = d
	}
	if v := getenv("SDS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("SDS_TIMEOUT %q: want a duration such as 30s", v)
		}
		c.SDSTimeout = d
	}
	for _, s := range []struct {
		name string
		dst  *time.Duration
	}{{"POLL_FIRST_WAIT_SECONDS", &c.FirstWait}, {"POLL_MAX_WAIT_SECONDS", &c.MaxWait}} {
		if v := getenv(s.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 3600 {
				return c, fmt.Errorf("%s %q: want whole seconds from 1 to 3600", s.name, v)
			}
			*s.dst = time.Duration(n) * time.Second
		}
	}
	if v := getenv("JOB_DEADLINE_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("JOB_DEADLINE_SECONDS %q: want a positive whole number of seconds", v)
		}
		c.JobDeadline = time.Duration(n) * time.Second
	}
	if c.MaxWait < c.FirstWait {
		return c, errors.New("POLL_MAX_WAIT_SECONDS is below POLL_FIRST_WAIT_SECONDS")
	}
	if _, err := sds.New(c.SDSBaseURL, "config-check"); err != nil {
		return c, fmt.Errorf("SDS_BASE_URL: %w", err)
	}
	// The key travels in the query string: plain http is for a local
	// emulator only, never across a network or through a proxy.
	if u, _ := url.Parse(c.SDSBaseURL); u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return c, fmt.Errorf("SDS_BASE_URL %q: the master key is only sent over https (http is allowed for loopback addresses)", c.SDSBaseURL)
	}
	return c, nil
}

// Keys supplies master keys by secret id.
type Keys interface {
	MasterKey(ctx context.Context, secretID string) (string, error)
	Forget(secretID string)
}

// Archiver copies an export into the archive.
type Archiver interface {
	Copy(ctx context.Context, req archive.Request, open func(context.Context) (*sds.Export, error)) (archive.Result, error)
}

// Runner runs the five functions' logic.
type Runner struct {
	cfg     Config
	keys    Keys
	archive Archiver // nil for functions that do not copy
	sdsOpts []sds.Option
	now     func() time.Time
	log     *slog.Logger
}

// NewRunner wires a Runner. arch may be nil except for copytos3.
func NewRunner(cfg Config, keys Keys, arch Archiver, log *slog.Logger, sdsOpts ...sds.Option) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Zero durations mean the defaults, so a partly filled Config is safe.
	if cfg.FirstWait <= 0 {
		cfg.FirstWait = 15 * time.Second
	}
	if cfg.MaxWait < cfg.FirstWait {
		cfg.MaxWait = max(15*time.Minute, cfg.FirstWait)
	}
	if cfg.JobDeadline <= 0 {
		cfg.JobDeadline = 13 * time.Hour
	}
	return &Runner{cfg: cfg, keys: keys, archive: arch, sdsOpts: sdsOpts, now: time.Now, log: log}
}

// withSDS runs fn with a client holding the master key of secretID (the
// configured default when empty). When the service refuses the key, the
// cached key is dropped and fn runs once more with a freshly read one: a
// rotated secret is picked up without waiting for the cache to expire.
func (r *Runner) withSDS(ctx context.Context, secretID string, fn func(*sds.Client) error) error {
	if secretID == "" {
		secretID = r.cfg.MasterKeySecretID
	}
	if secretID == "" {
		return &Error{Type: SecretNotFound, Message: "no master key secret: set MASTER_KEY_SECRET_ID or pass masterKeySecretId"}
	}
	key, err := r.keys.MasterKey(ctx, secretID)
	if err != nil {
		return err
	}
	c, err := r.client(secretID, key)
	if err != nil {
		return err
	}
	err = redacted(c, fn(c))
	if !errors.Is(err, sds.ErrUnauthorized) {
		return err
	}
	r.keys.Forget(secretID)
	fresh, ferr := r.keys.MasterKey(ctx, secretID)
	if ferr != nil {
		return ferr
	}
	if fresh == key {
		return err
	}
	r.log.InfoContext(ctx, "master key refused; retrying once with the secret's current value", slog.String("secretId", secretID))
	if c, err = r.client(secretID, fresh); err != nil {
		return err
	}
	return redacted(c, fn(c))
}

// client returns an SDS client for key. A key that cannot be sent as it is
// (too long, spaces, control characters) is a malformed secret.
func (r *Runner) client(secretID, key string) (*sds.Client, error) {
	if err := sds.ValidateKey(key); err != nil {
		var se *sds.Error
		msg := err.Error()
		if errors.As(err, &se) {
			msg = se.Message
		}
		return nil, &Error{Type: SecretNotFound, Message: fmt.Sprintf("secret %q holds no usable master key: %s", secretID, msg), Err: err}
	}
	return sds.New(r.cfg.SDSBaseURL, key, r.sdsOpts...)
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
// doubled per check, capped at MaxWait. With the defaults (15 s to 15 min)
// a 12-hour job is polled about 55 times, a one-minute job is noticed within
// a minute of finishing.
func (r *Runner) nextWait(polls int) int {
	w := r.cfg.FirstWait.Seconds() * math.Pow(2, float64(polls))
	return int(math.Min(w, r.cfg.MaxWait.Seconds()))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
