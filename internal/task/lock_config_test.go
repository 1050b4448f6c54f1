package task

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/archive"
)

// The Object Lock settings are read once, at cold start: a bad value stops
// the function from starting rather than archiving unlocked.
func TestConfigFromEnvObjectLock(t *testing.T) {
	for _, tc := range []struct {
		mode, days string
		want       archive.Retention
		bad        bool
	}{
		{want: archive.Retention{}},
		{mode: "COMPLIANCE", days: "365", want: archive.Retention{Mode: types.ObjectLockModeCompliance, Days: 365}},
		{mode: "GOVERNANCE", days: "1", want: archive.Retention{Mode: types.ObjectLockModeGovernance, Days: 1}},
		{mode: "GOVERNANCE", bad: true},
		{mode: "WORM", days: "30", bad: true},
		{mode: "COMPLIANCE", days: "-1", bad: true},
	} {
		env := map[string]string{"ARCHIVE_BUCKET": "b", "ARCHIVE_LOCK_MODE": tc.mode, "ARCHIVE_LOCK_DAYS": tc.days}
		c, err := ConfigFromEnv(func(k string) string { return env[k] })
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), "ARCHIVE_LOCK_MODE")):
			t.Errorf("%q %q: %v, want an error naming the variables", tc.mode, tc.days, err)
		case !tc.bad && (err != nil || c.ArchiveRetention != tc.want):
			t.Errorf("%q %q: %+v, %v; want %+v", tc.mode, tc.days, c.ArchiveRetention, err, tc.want)
		}
	}
}
