package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/masterkey"
	"github.com/sdsops/sdsops/internal/s3err"
	"github.com/sdsops/sdsops/internal/sds"
)

// Error types: the Lambda errorType a state machine's Retry and Catch match.
const (
	InvalidInput       = "InvalidInput"
	SecretNotFound     = "SecretNotFound"
	Unauthorized       = "Unauthorized"
	DataSourceNotFound = "DataSourceNotFound"
	// DataSourceLimit: SDS refused a load that would create a data source
	// because the account already has its maximum (25). Not retried: a
	// slot frees only when a data source is deleted. A restore drill that
	// meets it is skipped, not failed.
	DataSourceLimit = "DataSourceLimit"
	Throttled       = "Throttled"
	SdsUnavailable  = "SdsUnavailable"
	JobAborted      = "JobAborted"
	IntegrityError  = "IntegrityError"
	// ArchiveUnavailable: S3 failed; nothing was left half-written.
	ArchiveUnavailable = "ArchiveUnavailable"
	// ArchiveUnverified: the export arrived complete and is archived with
	// its manifest (verified: false), but a verification check failed; the
	// message names the archive and the reasons. Not retried: the same
	// export would fail the same way. It fails the backup, so it raises the
	// alarm, counts as a failure of the nightly run, and stops a delete
	// that asked for a backup first.
	ArchiveUnverified = "ArchiveUnverified"
	// ArchiveUnrestorable: restore refused in prepare, before any SDS
	// request, because the archive's manifest says restorable: false (an
	// entity or the schema breaks a documented load rule, so SDS would
	// refuse the load); the message names the reasons. Not retried. force:
	// true sends it to the load anyway. A manifest written before the check
	// has no restorable field and is not refused.
	ArchiveUnrestorable = "ArchiveUnrestorable"
	// FunctionTimeout: the function stopped itself just before its Lambda
	// timeout; retried once (a one-off stall), not more (a copy that cannot
	// fit in the time would only repeat).
	FunctionTimeout = "FunctionTimeout"
	// SecretUnavailable: Secrets Manager could not answer; retried.
	SecretUnavailable = "SecretUnavailable"
	// ArchiveNotFound: no manifest under the key given (convert).
	ArchiveNotFound = "ArchiveNotFound"
	// ArchiveTampered: the archived bytes do not match the sha256 or size
	// in their manifest; nothing was written. Not retried.
	ArchiveTampered = "ArchiveTampered"
	// ConversionFailed: the archive is intact but does not convert; the
	// backup state machine also reports any failure of its conversion
	// step under this type, with the step's own type in the cause.
	ConversionFailed = "ConversionFailed"
	// CatalogCorrupt: a catalog record or index in S3 cannot be read
	// (garbage, another data source's, a newer format); the message names
	// the object. Not retried: reading it again gives the same bytes.
	CatalogCorrupt = "CatalogCorrupt"
	// ArchiveInColdStorage: an archive or manifest S3 cannot read at once
	// (InvalidObjectState: GLACIER, DEEP_ARCHIVE or an archive access tier,
	// not restored). Not retried: it needs an S3 restore, which takes hours.
	ArchiveInColdStorage = "ArchiveInColdStorage"
	// Internal: a fault of this function (configuration, a bug).
	Internal = "Internal"
)

// Error is a failure with its Lambda error type. Messages never hold a key.
type Error struct {
	Type    string
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) *Error {
	return &Error{Type: InvalidInput, Message: fmt.Sprintf(format, args...)}
}

// classify gives any error from the layers below its Lambda error type.
func classify(err error) *Error {
	if s3err.InArchiveTier(err) {
		// Whatever step met it (a manifest, an archive, a conversion): the
		// same remedy, never a retry.
		return &Error{Type: ArchiveInColdStorage, Message: err.Error() + "; the object is in an archive storage class and must be restored in S3 first (aws s3api restore-object), or copied back to a class read at once; nothing was loaded or written", Err: err}
	}
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	typ := Internal
	switch {
	case errors.Is(err, catalog.ErrCorrupt):
		typ = CatalogCorrupt
	// A conversion's own classes first: its storage failures may wrap the archive's.
	case errors.Is(err, conversion.ErrIntegrity):
		typ = ArchiveTampered
	case errors.Is(err, conversion.ErrNotFound):
		typ = ArchiveNotFound
	case errors.Is(err, conversion.ErrInvalid):
		typ = InvalidInput
	case errors.Is(err, conversion.ErrExport):
		typ = ConversionFailed
	case errors.Is(err, conversion.ErrStorage):
		typ = ArchiveUnavailable
	case errors.Is(err, sds.ErrInvalidInput), errors.Is(err, sds.ErrBadRequest):
		typ = InvalidInput
	case errors.Is(err, sds.ErrUnauthorized):
		typ = Unauthorized
	case errors.Is(err, sds.ErrDataSourceLimit):
		typ = DataSourceLimit
	case errors.Is(err, sds.ErrNotFound):
		typ = DataSourceNotFound
	case errors.Is(err, sds.ErrThrottled):
		typ = Throttled
	case errors.Is(err, sds.ErrJobAborted):
		typ = JobAborted
	case errors.Is(err, archive.ErrUnverified):
		typ = ArchiveUnverified
	case errors.Is(err, archive.ErrIntegrity):
		typ = IntegrityError
	case errors.Is(err, archive.ErrInvalidRequest):
		typ = InvalidInput
	case errors.Is(err, sds.ErrUnavailable), errors.Is(err, sds.ErrDecode), errors.Is(err, archive.ErrSource):
		typ = SdsUnavailable
	case errors.Is(err, archive.ErrStorage):
		typ = ArchiveUnavailable
	case errors.Is(err, masterkey.ErrNotFound), errors.Is(err, masterkey.ErrMalformed):
		typ = SecretNotFound
	case errors.Is(err, masterkey.ErrUnavailable):
		typ = SecretUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		typ = SdsUnavailable
	}
	return &Error{Type: typ, Message: err.Error(), Err: err}
}

// catalogFailure types a failure of the catalog in S3: CatalogCorrupt for
// an object that cannot be read, ArchiveUnavailable (retried) otherwise.
func catalogFailure(err error) *Error {
	if errors.Is(err, catalog.ErrCorrupt) {
		return &Error{Type: CatalogCorrupt, Message: err.Error(), Err: err}
	}
	return &Error{Type: ArchiveUnavailable, Message: err.Error(), Err: err}
}

// LambdaError converts err into the form the Lambda runtime reports with
// our error type, instead of the Go type name.
func LambdaError(err error) error {
	if err == nil {
		return nil
	}
	e := classify(err)
	return messages.InvokeResponse_Error{Type: e.Type, Message: e.Message}
}
