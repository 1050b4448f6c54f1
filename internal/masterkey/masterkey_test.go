package masterkey

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func putSecret(t *testing.T, value string) string {
	t.Helper()
	name := "sdsops/test/" + strings.ReplaceAll(t.Name(), "/", "-")
	_, err := testenv.Secrets(t).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestMasterKeyForms(t *testing.T) {
	const key = "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv12Wx34"
	tests := []struct {
		name, value string
		want        error // nil: the key is returned
	}{
		{"bare", key, nil},
		{"bare with newline", key + "\n", nil},
		{"json", `{"masterKey":"` + key + `"}`, nil},
		{"json with other fields", `{"queryKey":"q","masterKey":"` + key + `","note":1}`, nil},
		{"json without masterKey", `{"key":"` + key + `"}`, ErrMalformed},
		{"json masterKey not a string", `{"masterKey":42}`, ErrMalformed},
		{"broken json", `{"masterKey":"` + key, ErrMalformed},
		{"empty json key", `{"masterKey":""}`, ErrMalformed},
		{"spaces", "two words", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := putSecret(t, tt.value)
			got, err := New(testenv.Secrets(t), 0).MasterKey(context.Background(), id)
			if tt.want == nil {
				if err != nil || got != key {
					t.Fatalf("MasterKey = %q, %v; want the key", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "two words") {
				t.Errorf("error shows the secret's value: %v", err)
			}
			if !strings.Contains(err.Error(), id) {
				t.Errorf("error does not name the secret: %v", err)
			}
		})
	}
}

func TestMissingAndDeletedSecrets(t *testing.T) {
	ctx := context.Background()
	s := New(testenv.Secrets(t), 0)
	if _, err := s.MasterKey(ctx, "sdsops/test/does-not-exist"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing secret: %v, want ErrNotFound", err)
	}
	if _, err := s.MasterKey(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("no secret id: %v, want ErrNotFound", err)
	}
	id := putSecret(t, "k1")
	if _, err := testenv.Secrets(t).DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MasterKey(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("secret scheduled for deletion: %v, want ErrNotFound", err)
	}
}

func TestCacheAndRotation(t *testing.T) {
	ctx := context.Background()
	id := putSecret(t, "old-key")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := New(testenv.Secrets(t), time.Minute)
	s.now = func() time.Time { return now }
	get := func() string {
		t.Helper()
		k, err := s.MasterKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if k := get(); k != "old-key" {
		t.Fatalf("first read %q", k)
	}
	if _, err := testenv.Secrets(t).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String("new-key")}); err != nil {
		t.Fatal(err)
	}
	if k := get(); k != "old-key" {
		t.Errorf("within the TTL the cached key should be used, got %q", k)
	}
	s.Forget(id)
	if k := get(); k != "new-key" {
		t.Errorf("after Forget got %q, want the rotated key", k)
	}
	testenv.Secrets(t).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String("newer-key")})
	now = now.Add(61 * time.Second)
	if k := get(); k != "newer-key" {
		t.Errorf("after the TTL got %q, want the newest key", k)
	}
}
