package task_test

import (
	"maps"
	"strings"
	"testing"
)

// TestCopyChecksDownloadURLFirst: the event is checked completely before
// anything is decided, so a download link to another host (or a version id
// that is not one) is refused also when the job is archived already.
func TestCopyChecksDownloadURLFirst(t *testing.T) {
	f := newFixture(t, masterKey, nil)
	st := f.backupToCompleted()
	good, _ := st["downloadUrl"].(string)
	path := strings.TrimPrefix(good, f.srv.URL)
	bad := []struct{ name, field, value string }{
		{"another host", "downloadUrl", "https://downloads.example.net" + path},
		{"another port", "downloadUrl", "http://127.0.0.1:1" + path},
		{"credentials in host", "downloadUrl", strings.Replace(good, "://", "://user:pw@", 1)},
		{"outside /REST/v1", "downloadUrl", f.srv.URL + "/elsewhere/output"},
		{"not a URL", "downloadUrl", "output/succeeded"},
		{"version not a job id", "versionJobId", "../../other"},
	}
	check := func(when string) {
		t.Helper()
		for _, b := range bad {
			ev := maps.Clone(st)
			ev[b.field] = b.value
			if out, typ, msg := f.invoke("copytos3", ev); typ != "InvalidInput" {
				t.Errorf("%s, %s: %s %s %v, want InvalidInput", when, b.name, typ, msg, out)
			}
		}
	}
	check("no archive yet")
	if objects, _ := objectCount(t, f.bucket); objects != 0 {
		t.Fatalf("%d objects after refused copies", objects)
	}
	f.mustInvoke("copytos3", st)
	check("archive in place")
}
