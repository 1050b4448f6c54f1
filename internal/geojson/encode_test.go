package geojson

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendString: every byte JSON cannot hold as it is gets escaped,
// wherever it falls among the eight-byte words the scan reads, and the
// string reads back as it was.
func TestAppendString(t *testing.T) {
	for _, c := range []byte{0, 0x01, '\t', '\n', '\r', 0x1f, '"', '\\'} {
		for at := range 20 {
			s := []byte(strings.Repeat("é", at/2) + strings.Repeat("x", at%2)) // at bytes
			s = append(s, c)
			s = append(s, "Ørsted 0123456789 \x7f"...)
			got := appendString(nil, s)
			var back string
			if err := json.Unmarshal(got, &back); err != nil || back != string(s) {
				t.Fatalf("%q → %s → %q, %v", s, got, back, err)
			}
			if strings.Count(string(got), `"`) != 2+strings.Count(string(s), `"`) {
				t.Errorf("%q → %s: quotes not escaped", s, got)
			}
		}
	}
	if got := string(appendString(nil, []byte("Café Ørsted, 東京 № 12345678 \x7f"))); got != "\"Café Ørsted, 東京 № 12345678 \x7f\"" {
		t.Errorf("plain text changed: %s", got)
	}
}
