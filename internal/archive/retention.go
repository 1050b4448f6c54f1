package archive

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Retention is the S3 Object Lock retention given to every object that must
// not be lost: the archived XML, its manifest (each version of it), and the
// GeoJSON, GeoParquet and schema document converted from it. Claims, the
// catalog and failed-load outputs are never locked: they are rewritten or
// deleted as a matter of course. Retention is set per object, in the
// request that writes it, rather than by a bucket default rule, which would
// lock the catalog records the nightly run rewrites too.
//
// The zero Retention locks nothing.
type Retention struct {
	// Mode is GOVERNANCE (removable by a principal allowed
	// s3:BypassGovernanceRetention) or COMPLIANCE (by no one until it
	// expires); empty for none.
	Mode types.ObjectLockMode
	// Days is how long each object version is kept from its write.
	Days int
}

// MaxRetentionDays bounds Retention.Days (100 years, S3's own limit).
const MaxRetentionDays = 36500

// ParseRetention reads a retention from its mode (GOVERNANCE, COMPLIANCE
// or empty for none, in any case) and its days (a whole number from 1 to
// MaxRetentionDays; ignored without a mode).
func ParseRetention(mode, days string) (Retention, error) {
	mode, days = strings.TrimSpace(mode), strings.TrimSpace(days)
	if mode == "" {
		return Retention{}, nil
	}
	var r Retention
	switch m := types.ObjectLockMode(strings.ToUpper(mode)); m {
	case types.ObjectLockModeGovernance, types.ObjectLockModeCompliance:
		r.Mode = m
	default:
		return Retention{}, fmt.Errorf("object lock mode %q: want GOVERNANCE, COMPLIANCE or nothing", mode)
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 1 || n > MaxRetentionDays {
		return Retention{}, fmt.Errorf("object lock retention %q days: want a whole number from 1 to %d", days, MaxRetentionDays)
	}
	r.Days = n
	return r, nil
}

// On reports whether objects are locked.
func (r Retention) On() bool { return r.Mode != "" }

// Until is the retain-until date of an object version written at now.
func (r Retention) Until(now time.Time) time.Time {
	return now.UTC().Add(time.Duration(r.Days) * 24 * time.Hour).Truncate(time.Second)
}

// String describes r for messages.
func (r Retention) String() string {
	if !r.On() {
		return "no object lock"
	}
	return fmt.Sprintf("object lock %s for %d days", r.Mode, r.Days)
}

// Retain gives a PutObject of an object that must not be lost the Store's
// retention, counted from now: the new version is locked in the request
// that writes it, so it is never stored unlocked. S3 refuses an Object Lock
// PUT without an integrity checksum; the SDK computes the one named here.
// It does nothing when the Store locks nothing.
func (s *Store) Retain(in *s3.PutObjectInput) {
	if !s.cfg.Retention.On() {
		return
	}
	in.ObjectLockMode = s.cfg.Retention.Mode
	in.ObjectLockRetainUntilDate = ptr(s.cfg.Retention.Until(s.cfg.Now()))
	if in.ChecksumAlgorithm == "" {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
	}
}
