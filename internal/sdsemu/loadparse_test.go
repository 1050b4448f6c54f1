package sdsemu

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// The load matches property names in any case and fails a single entity, not the upload, for
// what is wrong with that entity alone.
func TestReadUploadEntityFaults(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		failed         int
		want           string // in the failed output
	}{
		{"anyCase", "<Latitude>1</Latitude>", "<LATITUDE>1</LATITUDE>", 0, ""},
		{"unknownProperty", "<Latitude>1</Latitude>", "<Latitude>1</Latitude><Height>3</Height>", 1, "Height"},
		{"givenTwice", "<Latitude>1</Latitude>", "<Latitude>1</Latitude><latitude>1</latitude>", 1, "two <latitude>"},
		{"holdsElements", "<Latitude>1</Latitude>", "<Latitude><v>1</v></Latitude>", 1, "holds an element"},
		{"badDouble", "<Latitude>1</Latitude>", "<Latitude>north</Latitude>", 1, `Latitude is not a valid xs:double: "north"`},
		{"noKey", "<E><Id>1</Id>", "<E>", 1, "entity ID Id is missing"},
		{"sameKey", "<Id>1</Id>", "<Id>0</Id>", 1, "used by an earlier entity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Replace(tinyData(2), []byte(tc.from), []byte(tc.to), 1)
			var out, failed bytes.Buffer
			ow, fw := bufio.NewWriter(&out), bufio.NewWriter(&failed)
			o, err := readUpload(bytes.NewReader(data), "Up", MaxEntities, ow, fw)
			ow.Flush()
			fw.Flush()
			if err != nil || o.entities != 2 || o.failed != tc.failed {
				t.Fatalf("err %v, %d entities, %d failed (%q), want 2 and %d", err, o.entities, o.failed, o.abort, tc.failed)
			}
			if tc.failed > 0 && (!strings.Contains(failed.String(), tc.want) || !o.failedLog) {
				t.Errorf("failed output does not mention %q:\n%s", tc.want, failed.String())
			}
			if tc.failed == 0 && (o.abort != "" || bytes.Count(out.Bytes(), []byte("<Latitude>1</Latitude>")) != 2) {
				t.Errorf("abort %q, stored:\n%s", o.abort, out.String())
			}
		})
	}
}
