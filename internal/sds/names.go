package sds

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Limits on identifiers: a data source name has up to 50 characters,
// alphanumeric plus ~ ` ! $ ^ _ = { } (the docs' list) and - (accepted by
// Microsoft's own client, so real names may have it). The docs give no format for
// accessId beyond examples (29–32 hex characters); we accept up to 64
// alphanumerics. Job ids are GUIDs, with or without dashes.
var (
	accessIDPattern = regexp.MustCompile("^[A-Za-z0-9]{1,64}$")
	namePattern     = regexp.MustCompile("^[A-Za-z0-9~`!$^_={}-]{1,50}$")
	jobIDPattern    = regexp.MustCompile("^[A-Za-z0-9-]{1,64}$")
)

// DataSource identifies a data source: the account-level access id and the
// data source name, the two path segments of every management URL.
type DataSource struct {
	AccessID string
	Name     string
}

func (d DataSource) String() string { return d.AccessID + "/" + d.Name }

// Validate reports, as an ErrInvalidInput error naming the field, whether
// the identifiers are safe to put in a URL path.
func (d DataSource) Validate() error {
	if err := ValidateAccessID(d.AccessID); err != nil {
		return err
	}
	return ValidateName(d.Name)
}

// ValidateAccessID checks an accessId.
func ValidateAccessID(s string) error {
	return check("accessId", s, accessIDPattern, "1 to 64 letters or digits")
}

// ValidateName checks a data source name.
func ValidateName(s string) error {
	return check("dataSourceName", s, namePattern, "1 to 50 letters, digits or ~ ` ! $ ^ _ = { } -")
}

// ValidateJobID checks a job id.
func ValidateJobID(s string) error {
	return check("jobId", s, jobIDPattern, "1 to 64 letters, digits or dashes")
}

func check(field, s string, re *regexp.Regexp, want string) error {
	if re.MatchString(s) {
		return nil
	}
	var why string
	switch {
	case s == "":
		why = "is empty"
	case !utf8.ValidString(s):
		why = "is not valid UTF-8"
	case len(s) > 64:
		why = fmt.Sprintf("is %d bytes long", len(s))
	default:
		why = fmt.Sprintf("%q is not allowed", truncate(s, 70))
	}
	return &Error{Class: ErrInvalidInput, Message: fmt.Sprintf("%s %s: want %s", field, why, want)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
