// Package sds is a client for the Bing Maps Spatial Data Services (SDS)
// Data Source Management API: download jobs and their data, deletion,
// public/private switching, data source information and the job list.
//
// The client talks JSON by default and decodes XML as well, so captured XML
// responses can be fed to the same decoders. It is deliberately tolerant of
// the quirks in the service's own documentation (field names in either case,
// the output link named by "name" or "output", nil or missing dates, empty
// entity counts), accepts what Microsoft's own client accepts from the real
// service (names with '-', ZIP and gzip deliveries, a status URL only in the
// Location header, an abort's reason only in errorDetails), and is strict
// about where the master key goes: the key is only ever sent to the
// configured host, and is removed from every text the service sends back.
// Every body read is bounded in time (an idle timeout) and every answer in
// size, depth and element count.
//
// # Retries
//
// One loop (retry.go) repeats every call; RetryPolicy sets its bounds and
// WithRetry replaces them. DefaultRetry:
//
//   - MaxAttempts 4: attempts in all, the first included, whatever fails
//     (status, connection, or a body cut short or stalled). A call that
//     reads the whole answer counts the request and the body read as one
//     attempt; a stream (an export, an error log) is not repeated once its
//     body has been handed to the caller.
//   - Backoff: full jitter, a wait drawn from [0, min(MaxDelay,
//     BaseDelay·2^(n-1))] before attempt n+1, with BaseDelay 250 ms and
//     MaxDelay 8 s.
//   - Retry-After (seconds or an HTTP date, on 429 or 503): the wait is at
//     least what it asks. One longer than MaxRetryAfter (30 s) is not slept
//     through: the call returns ErrThrottled with Error.RetryAfter set, so
//     an orchestrator can wait without holding a Lambda open. A 503 with
//     Retry-After is ErrThrottled, without it ErrUnavailable.
//   - Deadline: no retry unless the wait, another attempt as long as the
//     failed one, and a margin of 1 s fit before the context's deadline,
//     so that the caller can still report the error.
//   - Timeouts (WithTimeout, default 30 s): each attempt until its headers
//     arrive (a load: from the end of its body), and every wait for the
//     next bytes of a body (an idle timeout; a stall is ErrUnavailable).
//     With a context deadline, the wait for headers and the whole reading
//     of an answer the client reads itself (status, information, job
//     list) also end 1 s before it (a quarter of the time left when that
//     is shorter), with ErrUnavailable: a stalled or trickling service
//     never runs a call into its caller's deadline. A stream handed to the
//     caller (an export, an error log) keeps only the idle timeout; the
//     caller's deadline bounds it as a whole.
//
// What is repeated depends on what a repeat could do twice:
//
//   - Reads (job status, data source information, the job list, an export,
//     an error log), visibility switches and deletions are repeated on
//     ErrThrottled and ErrUnavailable (5xx, connection failures, stalls, a
//     body cut short). A deletion whose repeat finds the data source gone
//     (404) after an attempt whose outcome is unknown succeeds.
//   - Creating a download job, publishing a staged version and rolling
//     back are repeated on ErrThrottled and when no connection could be
//     made, never after a 5xx or a lost answer: the job may exist.
//   - A load (POST of the data) is repeated only when no connection could
//     be made, before any of its body was read: the body is streamed once.
//   - Nothing else is repeated: ErrBadRequest, ErrUnauthorized,
//     ErrDataSourceLimit, ErrNotFound, ErrDecode, ErrInvalidInput, a
//     refused redirect.
//
// Each repeat is logged (WithLogger) at Warn with the operation, attempt,
// status and wait; never the key.
package sds
