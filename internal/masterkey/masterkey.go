// Package masterkey reads SDS master keys from AWS Secrets Manager and keeps
// them for a while, so that a warm Lambda container does not fetch the key
// on every invocation but still notices a rotated secret.
package masterkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// DefaultTTL is how long a key is reused before Secrets Manager is asked again.
const DefaultTTL = 5 * time.Minute

// Errors a caller can branch on. Messages name the secret, never its value.
var (
	// ErrNotFound: the secret does not exist, is scheduled for deletion, or
	// may not be read by this function.
	ErrNotFound = errors.New("secret not found")
	// ErrMalformed: the secret exists but holds no usable master key.
	ErrMalformed = errors.New("secret holds no usable master key")
	// ErrUnavailable: Secrets Manager could not answer (throttling, a
	// service or network fault); trying again later may work.
	ErrUnavailable = errors.New("secrets manager unavailable")
)

// SecretsAPI is the part of the Secrets Manager client the store uses.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Store caches master keys per secret id.
type Store struct {
	api SecretsAPI
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	key     string
	fetched time.Time
}

// New returns a store reading through api; ttl <= 0 means DefaultTTL.
func New(api SecretsAPI, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{api: api, ttl: ttl, now: time.Now, cache: map[string]entry{}}
}

// MasterKey returns the master key held by secretID (a name or ARN). The
// secret's value is either the bare key or JSON {"masterKey":"..."}.
func (s *Store) MasterKey(ctx context.Context, secretID string) (string, error) {
	if strings.TrimSpace(secretID) == "" {
		return "", fmt.Errorf("no master key secret configured: %w", ErrNotFound)
	}
	s.mu.Lock()
	e, ok := s.cache[secretID]
	s.mu.Unlock()
	if ok && s.now().Sub(e.fetched) < s.ttl {
		return e.key, nil
	}
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &secretID})
	if err != nil {
		return "", classify(secretID, err)
	}
	key, err := parse(out)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w: %s", secretID, ErrMalformed, err.Error())
	}
	s.mu.Lock()
	s.cache[secretID] = entry{key: key, fetched: s.now()}
	s.mu.Unlock()
	return key, nil
}

// Forget drops the cached key of secretID, so the next call reads the
// secret again: used when the service refused the key (a rotated secret).
func (s *Store) Forget(secretID string) {
	s.mu.Lock()
	delete(s.cache, secretID)
	s.mu.Unlock()
}

func classify(secretID string, err error) error {
	var nf *smtypes.ResourceNotFoundException
	var inv *smtypes.InvalidRequestException
	var dec *smtypes.DecryptionFailure
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("secret %q: %w", secretID, ErrNotFound)
	case errors.As(err, &inv):
		// Secrets Manager answers this for a secret scheduled for deletion.
		return fmt.Errorf("secret %q cannot be read (%s): %w", secretID, inv.ErrorMessage(), ErrNotFound)
	case errors.As(err, &dec):
		return fmt.Errorf("secret %q cannot be decrypted: %w", secretID, ErrNotFound)
	case isAccessDenied(err):
		return fmt.Errorf("secret %q may not be read by this function: %w", secretID, ErrNotFound)
	}
	return fmt.Errorf("reading secret %q: %w: %w", secretID, ErrUnavailable, err)
}

func isAccessDenied(err error) bool {
	var coded interface{ ErrorCode() string }
	return errors.As(err, &coded) && (coded.ErrorCode() == "AccessDeniedException" || coded.ErrorCode() == "AccessDenied")
}

// parse extracts the key. Error texts describe the shape, never the value.
func parse(out *secretsmanager.GetSecretValueOutput) (string, error) {
	if out.SecretString == nil {
		return "", errors.New("the secret has no string value (binary secrets are not supported)")
	}
	v := strings.TrimSpace(*out.SecretString)
	if strings.HasPrefix(v, "{") {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v), &doc); err != nil {
			return "", errors.New(`the value starts with "{" but is not valid JSON`)
		}
		raw, ok := doc["masterKey"]
		if !ok {
			return "", errors.New(`the JSON value has no "masterKey" field`)
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", errors.New(`"masterKey" is not a string`)
		}
		v = strings.TrimSpace(v)
	}
	if v == "" {
		return "", errors.New("the key is empty")
	}
	for _, r := range v {
		if r <= ' ' || r >= 0x7f {
			return "", errors.New("the key contains spaces, control or non-ASCII characters")
		}
	}
	return v, nil
}
