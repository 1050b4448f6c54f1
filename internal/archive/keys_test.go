package archive

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLayoutParse(t *testing.T) {
	l := NewLayout("sds-exports")
	ref := Ref{AccessID: "a1b2", DataSourceName: "Stores-2019", Day: time.Date(2024, 6, 1, 23, 59, 0, 0, time.UTC), JobID: "0123abcd"}
	key := l.Key(ref)
	if key != "sds-exports/a1b2/Stores-2019/2024/06/01/0123abcd.xml" || l.ManifestKey(ref) != key+ManifestSuffix {
		t.Fatalf("keys %s, %s", key, l.ManifestKey(ref))
	}
	for _, k := range []string{key, key + ManifestSuffix} {
		got, manifest, err := l.Parse(k)
		if err != nil || got.AccessID != ref.AccessID || got.DataSourceName != ref.DataSourceName || got.JobID != ref.JobID ||
			!got.Day.Equal(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)) || manifest != strings.HasSuffix(k, ManifestSuffix) {
			t.Errorf("Parse(%s) = %+v, %v, %v", k, got, manifest, err)
		}
	}

	for _, bad := range []string{
		"",
		"../../etc/passwd",
		"catalog/v1/index.json",
		"s3://other-bucket/x.xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/../../../x/2024/06/01/j.xml",
		"sds-exports/a1b2/../a1b2/Stores-2019/2024/06/01/j.xml",
		"sds-exports/./a1b2/Stores-2019/2024/06/01/j.xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/./j.xml",
		"sds-exports//a1b2/Stores-2019/2024/06/01/j.xml",
		"sds-exports/a1b2/Stores-2019/2024/06//01/j.xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/j\x00.xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/j.xml\x00",
		"sds-exports/a1b2/Stores-2019/2024/6/01/j.xml",
		"sds-exports/a1b2/Stores-2019/2024/02/30/j.xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/j.geojson",
		"sds-exports/a1b2/Stores-2019/2024/06/01/j.load-x.failed.xml",
		"sds-exports/a1b2/Stores-2019/extra/2024/06/01/j.xml",
		"sds-exports/a1b2/Stores 2019/2024/06/01/j.xml",
		"SDS-EXPORTS/a1b2/Stores-2019/2024/06/01/j.xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/" + strings.Repeat("j", 1000) + ".xml",
		"sds-exports/a1b2/Stores-2019/2024/06/01/j.xml\xff",
	} {
		if r, _, err := l.Parse(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrInvalidKey", bad, r, err)
		}
	}
	long := NewLayout(strings.Repeat("p", 975))
	if _, _, err := long.Parse(long.Key(ref)); err == nil {
		t.Error("a key whose manifest key is over 1,024 bytes was accepted")
	}
}

func TestLayoutListPrefix(t *testing.T) {
	l := NewLayout("sds-exports/")
	for in, want := range map[string]string{
		"":                        "sds-exports/",
		"sds-exports/":            "sds-exports/",
		"a1/":                     "sds-exports/a1/",
		"/a1/Stores/2024/0":       "sds-exports/a1/Stores/2024/0",
		"sds-exports/a1/Stores/":  "sds-exports/a1/Stores/",
		"a1/Stores/2024/06/01/ab": "sds-exports/a1/Stores/2024/06/01/ab",
	} {
		if got, err := l.ListPrefix(in); err != nil || got != want {
			t.Errorf("ListPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"../", "a1/../b", "sds-exports/../catalog/", "a1//", "./a1/", "a1/.", "a1/..", "a1/Sto\x00res/",
		"a1/Stores/2024/06/01/j/", strings.Repeat("a", 1100), "a1/Stores/24/",
	} {
		if got, err := l.ListPrefix(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ListPrefix(%q) = %q, %v; want ErrInvalidKey", bad, got, err)
		}
	}
}

// FuzzLayoutParse: a key Parse accepts is exactly the key the layout
// builds from what it parsed (so it is normalized), within S3's limit,
// with no "." or ".." segment.
func FuzzLayoutParse(f *testing.F) {
	for _, s := range []string{
		"sds-exports/a1/Stores/2024/06/01/j1.xml",
		"sds-exports/a1/Stores/2024/06/01/j1.xml.manifest.json",
		"sds-exports/a1/../Stores/2024/06/01/j1.xml",
		"sds-exports/a1/Stores/2024/13/01/j1.xml",
		"sds-exports//a1/Stores/2024/06/01/j1.xml",
	} {
		f.Add(s)
	}
	l := NewLayout("sds-exports/")
	f.Fuzz(func(t *testing.T, key string) {
		r, manifest, err := l.Parse(key)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("refusal not ErrInvalidKey: %v", err)
			}
			return
		}
		built := l.Key(r)
		if manifest {
			built = l.ManifestKey(r)
		}
		if built != key || len(l.ManifestKey(r)) > MaxKeyBytes {
			t.Fatalf("accepted %q, which the layout spells %q", key, built)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
	})
}
