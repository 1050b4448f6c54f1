package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/cli"
)

// Command lines that are wrong are refused with exit 2 and a reason,
// before anything is asked of AWS (no stack, no API is configured here:
// reaching them would fail differently).
func TestBadCommandLines(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "usage: sdsops"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"status", "extra"}, "1 argument(s) given, want 0"},
		{[]string{"archives"}, "0 argument(s) given, want 1"},
		{[]string{"rollback", "Name"}, "want 2"},
		{[]string{"night"}, "only --dry-run"},
		{[]string{"convert"}, "give one of NAME, --key KEY or --prefix PREFIX"},
		{[]string{"convert", "--key", "k.xml", "--prefix", "p/"}, "give one of"},
		{[]string{"convert", "--key", "not/an/archive.txt"}, "is not an archive key"},
		{[]string{"restore", "Name", "--archive", "k", "--date", "2024-01-01"}, "--archive or --date, not both"},
		{[]string{"restore", "Name", "--date", "yesterday"}, "want YYYY-MM-DD"},
		{[]string{"wait", "not-an-arn"}, "is not an execution ARN"},
		{[]string{"status", "--interval", "0s"}, "positive duration"},
		{[]string{"report", "extra"}, "1 argument(s) given, want 0"},
		{[]string{"report", "--date", "06.12.2026"}, "want YYYY-MM-DD"},
		{[]string{"report", "--execution", "a/b"}, "want an execution name or ARN"},
		{[]string{"report", "--execution", "arn:aws:states:us-east-1:1:execution:sdsops-nightly:"}, "want an execution name or ARN"},
		{[]string{"--api", "ftp://x", "status"}, "is not an http(s) URL"},
	} {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), tc.args, cli.IO{Stdout: &out, Stderr: &errb, Getenv: noEnv})
		if code != cli.ExitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("sdsops %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errb.String(), cli.ExitUsage, tc.want)
		}
	}
}
