package sds

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecoders feeds arbitrary bodies to every response decoder. Seeded
// with all the docs' examples; run briefly in CI (make fuzz).
func FuzzDecoders(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.*"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, err := DecodeResponse(body); err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("DecodeResponse error is not ErrDecode: %v", err)
			}
		} else {
			for _, j := range r.Jobs {
				if j.Status.Done() && j.Status != StatusCompleted && j.Status != StatusAborted {
					t.Fatalf("Done() for status %q", j.Status)
				}
				_ = j.DownloadURL()
				_ = j.Err()
			}
		}
		if _, err := DecodeDataSources(body); err != nil && !errors.Is(err, ErrDecode) {
			t.Fatalf("DecodeDataSources error is not ErrDecode: %v", err)
		}
	})
}

// FuzzValidate checks that whatever passes validation is safe as one path
// segment: no separators, dot segments, escapes or control characters.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"FourthCoffeeSample", "a/b", "..", "%2F", "a b", "x\x00", "\xff", "{name}", "a?b#c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, validate := range []func(string) error{ValidateAccessID, ValidateName, ValidateJobID} {
			if validate(s) != nil {
				continue
			}
			if s == "" || s == "." || s == ".." || bytes.ContainsAny([]byte(s), "/\\?#% \t\r\n\x00") {
				t.Fatalf("accepted unsafe segment %q", s)
			}
		}
	})
}
