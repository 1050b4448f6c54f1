package task

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzEvents feeds arbitrary bytes to the event decoders and validators:
// whatever they accept must be safe to put in an SDS URL path, and every
// refusal must be an InvalidInput error.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		`{"accessId":"20181f26d9e94c81acdf9496133d4f23","dataSourceName":"FourthCoffeeSample"}`,
		`{"accessId":"a","dataSourceName":"b","jobId":"x-1","masterKeySecretId":"sdsops/k"}`,
		`{"accessId":"a","dataSourceName":"../b"}`,
		`{"accessId":"a","dataSourceName":"b%2Fc","extra":1}`,
		`{"accessId":"a","dataSourceName":"b","confirm":"b","isStaging":true}`,
		`{"accessId":"a","dataSourceName":"b","public":"true"}`,
		`{"operation":"download","status":"Completed","x":{"y":[1,2]}}`,
		`[]`, `{`, "{\"accessId\":\"\xff\"}", `{"accessId":"a"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev StartDownloadEvent
		err := decodeStrict(raw, &ev)
		if err != nil {
			checkInvalid(t, err)
			return
		}
		if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
			checkInvalid(t, err)
			return
		}
		for _, v := range []string{ev.AccessID, ev.DataSourceName} {
			if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\?#% \"'<>&\x00\n\r\t") || len(v) > 64 {
				t.Fatalf("accepted unsafe identifier %q", v)
			}
			for _, r := range v {
				if r < 0x21 || r > 0x7e {
					t.Fatalf("accepted non-printable or non-ASCII identifier %q", v)
				}
			}
		}

		// Chained events keep every field they do not own.
		c, err := decodeChained(raw)
		if err != nil {
			checkInvalid(t, err)
			return
		}
		out, err := c.output(nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]json.RawMessage
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("chained output is not a JSON object: %s", b)
		}
		for k := range c.raw {
			if _, ok := back[k]; !ok && !owned(k) {
				t.Fatalf("field %q was dropped", k)
			}
		}
	})
}

func checkInvalid(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Type != InvalidInput {
		t.Fatalf("refusal is not InvalidInput: %v", err)
	}
}

// owned reports the fields a chained event rewrites (and may drop when empty).
func owned(k string) bool {
	switch k {
	case "downloadUrl", "errorMessage", "nextWaitSeconds", "deadlinePassed":
		return true
	}
	return false
}
