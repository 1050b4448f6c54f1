package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sdsops/sdsops/internal/sds"
)

// Operations named in results and chained events.
const (
	OpDownload  = "download"
	OpDelete    = "delete"
	OpSetPublic = "setPublic"
)

// Operations of the jobs a restore or rollback starts and LoadStatus
// follows.
const (
	OpLoad     = "load"
	OpPublish  = "publish"
	OpRollback = "rollback"
)

// Statuses reported to state machines.
const (
	StatusPending   = "Pending"
	StatusCompleted = "Completed"
	StatusAborted   = "Aborted"
	StatusAccepted  = "Accepted"
)

// maxEventBytes bounds an event: the largest legitimate one is a chained
// event of a few kilobytes; Step Functions itself caps payloads at 256 KiB.
const maxEventBytes = 256 << 10

// StartDownloadEvent asks for a download job.
type StartDownloadEvent struct {
	AccessID          string `json:"accessId"`
	DataSourceName    string `json:"dataSourceName"`
	JobID             string `json:"jobId,omitempty"`     // version to download; empty = published
	IsStaging         bool   `json:"isStaging,omitempty"` // download the staged version
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
}

// DeleteEvent asks for a data source (or its staged version) to be deleted.
type DeleteEvent struct {
	AccessID          string `json:"accessId"`
	DataSourceName    string `json:"dataSourceName"`
	IsStaging         bool   `json:"isStaging,omitempty"`
	Confirm           string `json:"confirm"` // must equal dataSourceName
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
	// Scratch: the delete of a restore drill's scratch data source; the
	// name must carry drill.ScratchPrefix.
	Scratch bool `json:"scratch,omitempty"`
	// RetryCount is the state machine's retry number of this step: after a
	// retry, a data source already gone was deleted by the earlier attempt.
	RetryCount int `json:"retryCount,omitempty"`
}

// SetPublicEvent asks for a data source to be made public or private.
type SetPublicEvent struct {
	AccessID          string `json:"accessId"`
	DataSourceName    string `json:"dataSourceName"`
	Public            *bool  `json:"public"`
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
}

// State is the chained event: what startdownload, delete and setpublic
// return and checkstatus and copytos3 read and extend. Only the fields the
// functions own are listed; all others travel along untouched.
type State struct {
	AccessID          string `json:"accessId"`
	DataSourceName    string `json:"dataSourceName"`
	Operation         string `json:"operation"`
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
	Status            string `json:"status"`

	// download
	JobID        string `json:"jobId,omitempty"`
	VersionJobID string `json:"versionJobId,omitempty"`
	StatusURL    string `json:"statusUrl,omitempty"`
	DownloadURL  string `json:"downloadUrl,omitempty"`
	CreatedDate  string `json:"createdDate,omitempty"`
	StartedAt    string `json:"startedAt,omitempty"`

	// delete and setPublic; IsStaging also on a download of the staged
	// version, so that its archive's manifest says so
	IsStaging   bool   `json:"isStaging,omitempty"`
	Public      *bool  `json:"public,omitempty"`
	RequestedAt string `json:"requestedAt,omitempty"`

	// checkstatus. TotalEntityCount is absent when the job gave no total,
	// and 0 for an empty data source.
	TotalEntityCount     *int64 `json:"totalEntityCount,omitempty"`
	ProcessedEntityCount int64  `json:"processedEntityCount,omitempty"`
	FailedEntityCount    int64  `json:"failedEntityCount,omitempty"`
	ErrorMessage         string `json:"errorMessage,omitempty"`
	PollCount            int    `json:"pollCount,omitempty"`
	NextWaitSeconds      int    `json:"nextWaitSeconds,omitempty"`
	DeadlinePassed       bool   `json:"deadlinePassed,omitempty"`
}

// decodeStrict decodes an entry event, refusing unknown fields, trailing
// data and anything that is not one JSON object.
func decodeStrict(raw []byte, v any) error {
	if err := checkRaw(raw); err != nil {
		return err
	}
	if err := checkKeys(raw, jsonFields(v)); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return invalid("event has data after the JSON object")
	}
	return nil
}

// checkKeys refuses an object whose top-level keys repeat, compared
// without case, or spell a known field in another case: encoding/json
// would let the last of them, in any case, win, and a delete could then
// name another data source than the one that was checked.
func checkKeys(raw []byte, known []string) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	if _, err := d.Token(); err != nil {
		return describeJSONError(err)
	}
	seen := map[string]string{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return describeJSONError(err)
		}
		key, _ := tok.(string)
		fold := strings.ToLower(key)
		if prev, ok := seen[fold]; ok {
			if prev == key {
				return invalid("field %q appears twice", truncate(key, 60))
			}
			return invalid("fields %q and %q differ only in case", truncate(prev, 60), truncate(key, 60))
		}
		seen[fold] = key
		for _, k := range known {
			if strings.EqualFold(k, key) && k != key {
				return invalid("field %q must be spelt %q", truncate(key, 60), k)
			}
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return describeJSONError(err)
		}
	}
	return nil
}

// jsonFields lists the JSON names of a struct's fields (v a pointer to it),
// embedded structs included.
func jsonFields(v any) []string {
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			names = append(names, name)
		}
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		walk(t)
	}
	return names
}

func checkRaw(raw []byte) error {
	if len(raw) > maxEventBytes {
		return invalid("event is %d bytes, more than %d", len(raw), maxEventBytes)
	}
	if !utf8.Valid(raw) {
		return invalid("event is not valid UTF-8")
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return invalid("event must be a JSON object")
	}
	return nil
}

// describeJSONError names the offending field in terms a caller can act on.
func describeJSONError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "event"
		}
		return invalid("field %q must be %s, not a JSON %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalid("event is not valid JSON (at byte %d)", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return invalid("event is not valid JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool", "ptr":
		return "a boolean"
	case "string":
		return "a string"
	case "int", "int64":
		return "a number"
	}
	return "a " + goKind
}

// chained is a chained event: the owned fields decoded, plus the raw object
// so that everything else is returned as it came.
type chained struct {
	State
	raw map[string]json.RawMessage
}

func decodeChained(raw []byte) (*chained, error) {
	if err := checkRaw(raw); err != nil {
		return nil, err
	}
	c := &chained{}
	if err := json.Unmarshal(raw, &c.raw); err != nil {
		return nil, describeJSONError(err)
	}
	if err := checkKeys(raw, jsonFields(&c.State)); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &c.State); err != nil {
		return nil, describeJSONError(err)
	}
	return c, nil
}

// output merges the owned fields over the fields that came in.
func (c *chained) output(extra any) (map[string]any, error) {
	out := make(map[string]any, len(c.raw)+8)
	for k, v := range c.raw {
		out[k] = v
	}
	// Fields that became empty are removed rather than left stale.
	for _, k := range []string{"downloadUrl", "errorMessage", "nextWaitSeconds", "deadlinePassed"} {
		delete(out, k)
	}
	for _, fields := range []any{c.State, extra} {
		if fields == nil {
			continue
		}
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

func (s *State) dataSource() sds.DataSource {
	return sds.DataSource{AccessID: s.AccessID, Name: s.DataSourceName}
}

// validateDataSource checks the identifiers before anything is sent.
func validateDataSource(accessID, name string) error {
	if err := (sds.DataSource{AccessID: accessID, Name: name}).Validate(); err != nil {
		var se *sds.Error
		if errors.As(err, &se) {
			return invalid("%s", se.Message)
		}
		return invalid("%v", err)
	}
	return nil
}

// validateJobID checks a job id before it is put in a URL.
func validateJobID(id string) error {
	if err := sds.ValidateJobID(id); err != nil {
		var se *sds.Error
		if errors.As(err, &se) {
			return invalid("%s", se.Message)
		}
		return invalid("%v", err)
	}
	return nil
}

func validateSecretID(id string) error {
	if id == "" {
		return nil
	}
	// Secret names: up to 512 characters of letters, digits and /_+=.@-;
	// ARNs add ':'.
	if len(id) > 2048 {
		return invalid("masterKeySecretId is longer than 2048 characters")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-:", r)) {
			return invalid("masterKeySecretId contains %q: want a Secrets Manager name or ARN", r)
		}
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func parseStateTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, invalid("field %q must be an RFC 3339 time, got %q", field, truncate(s, 40))
	}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// decodeChainedState decodes a chained event and checks the identifiers
// every chained function needs.
func decodeChainedState(raw []byte) (*chained, error) {
	st, err := decodeChained(raw)
	if err != nil {
		return nil, err
	}
	if err := validateDataSource(st.AccessID, st.DataSourceName); err != nil {
		return nil, err
	}
	if err := validateSecretID(st.MasterKeySecretID); err != nil {
		return nil, err
	}
	return st, nil
}

var timeZero time.Time
