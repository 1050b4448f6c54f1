package templatecheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instantClasses are the S3 storage classes whose objects GetObject reads
// at once. GLACIER and DEEP_ARCHIVE (and INTELLIGENT_TIERING's opt-in
// archive access tiers) answer InvalidObjectState until an S3 restore,
// hours later, has finished: no restore, conversion or query could read
// such an archive.
var instantClasses = []string{"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"}

// TestArchiveStorageClassIsReadAtOnce: the archive storage class can only
// be one restore and convert read without an S3 restore, every lifecycle
// transition of the bucket goes to one, and no archive access tier of
// Intelligent-Tiering is configured.
func TestArchiveStorageClassIsReadAtOnce(t *testing.T) {
	src, _ := load(t)
	p := src.Parameters["ArchiveStorageClass"]
	if p == nil {
		t.Fatal("template.yaml has no parameter ArchiveStorageClass")
	}
	var allowed []string
	for _, v := range list(p["AllowedValues"]) {
		allowed = append(allowed, str(v))
	}
	if len(allowed) == 0 {
		t.Fatal("ArchiveStorageClass has no AllowedValues: any class, GLACIER included, could be deployed")
	}
	for _, c := range allowed {
		if !slices.Contains(instantClasses, c) {
			t.Errorf("ArchiveStorageClass allows %s, which cannot be read without an S3 restore", c)
		}
	}
	if d := str(p["Default"]); !slices.Contains(allowed, d) {
		t.Errorf("ArchiveStorageClass default %q is not allowed", d)
	}
	buckets := src.ofType("AWS::S3::Bucket")
	if len(buckets) == 0 {
		t.Fatal("template.yaml creates no bucket")
	}
	transitions := 0
	for id, b := range buckets {
		if len(list(b.Properties["IntelligentTieringConfigurations"])) > 0 {
			t.Errorf("bucket %s configures Intelligent-Tiering archive access tiers, which need an S3 restore", id)
		}
		for _, rule := range list(obj(b.Properties["LifecycleConfiguration"])["Rules"]) {
			for _, field := range []string{"Transitions", "NoncurrentVersionTransitions"} {
				for _, tr := range list(obj(rule)[field]) {
					transitions++
					class := obj(tr)["StorageClass"]
					if ref := str(obj(class)["Ref"]); ref == "ArchiveStorageClass" {
						continue
					}
					if !slices.Contains(instantClasses, str(class)) {
						t.Errorf("bucket %s rule %v: %s to %v, which cannot be read without an S3 restore", id, obj(rule)["Id"], field, class)
					}
				}
			}
		}
	}
	if transitions == 0 {
		t.Error("no lifecycle transition found; the check would prove nothing")
	}
}

// defaultText is a parameter's default as the README's table writes it:
// empty for "", a list joined by commas.
func defaultText(v any) string {
	switch d := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(d))
		for i, e := range d {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case float64:
		return fmt.Sprint(d)
	}
	return fmt.Sprint(v)
}

// tableRows returns the rows of the first Markdown table in text, each as
// its cells with surrounding spaces and backquotes trimmed.
func tableRows(text string) [][]string {
	var rows [][]string
	started := false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if started {
				break
			}
			continue
		}
		started = true
		if regexp.MustCompile(`^\|[\s|:-]+\|$`).MatchString(line) {
			continue // the separator
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.Trim(strings.TrimSpace(c), "`"))
		}
		rows = append(rows, cells)
	}
	return rows
}

// TestReadmeParameterTable: README's "Template parameters" table under
// Deploy has one row per parameter of template.yaml, with its default
// (as in the template; "" written as an empty cell or "(empty)"), and
// names no parameter the template does not have.
func TestReadmeParameterTable(t *testing.T) {
	src, _ := load(t)
	if len(src.Parameters) == 0 {
		t.Fatal("template.yaml has no parameters; the check would prove nothing")
	}
	rows := tableRows(readmeSection(t, "Template parameters"))
	if len(rows) < 2 {
		t.Fatal("README's Template parameters section has no table")
	}
	if h := strings.ToLower(strings.Join(rows[0], "|")); !strings.HasPrefix(h, "name|default|") {
		t.Fatalf("table header %q: want name | default | what it does", rows[0])
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		if len(r) < 3 {
			t.Errorf("row %q: want parameter | default | what it does", r)
			continue
		}
		name, def := r[0], r[1]
		p, ok := src.Parameters[name]
		if !ok {
			t.Errorf("README's parameter table names %s, which template.yaml does not have", name)
			continue
		}
		if seen[name] {
			t.Errorf("parameter %s has two rows", name)
		}
		seen[name] = true
		want := defaultText(p["Default"])
		if def == "(empty)" {
			def = ""
		}
		if def != want {
			t.Errorf("parameter %s: README's default %q, template.yaml's %q", name, def, want)
		}
		if strings.TrimSpace(r[2]) == "" {
			t.Errorf("parameter %s: the row does not say what it does", name)
		}
	}
	for name := range src.Parameters {
		if !seen[name] {
			t.Errorf("parameter %s is missing from README's Template parameters table", name)
		}
	}
}

// TestReadmeListsWhatTheStackCreates: README's "What the stack creates"
// table has one row per resource type CloudFormation deploys (the template
// as SAM translates it), with the number of resources of that type.
func TestReadmeListsWhatTheStackCreates(t *testing.T) {
	_, tp := load(t)
	count := map[string]int{}
	for _, r := range tp.Resources {
		count[r.Type]++
	}
	if len(count) == 0 {
		t.Fatal("the translated template has no resources")
	}
	rows := tableRows(readmeSection(t, "What the stack creates"))
	if len(rows) < 2 {
		t.Fatal("README's What the stack creates section has no table")
	}
	listed := map[string]bool{}
	for _, r := range rows[1:] {
		if len(r) < 2 {
			t.Errorf("row %q: want resource type | count | what", r)
			continue
		}
		typ := r[0]
		listed[typ] = true
		n, ok := count[typ]
		if !ok {
			t.Errorf("README lists %s, which the stack does not create", typ)
			continue
		}
		if r[1] != fmt.Sprint(n) {
			t.Errorf("README says the stack creates %s %s, the template %d", r[1], typ, n)
		}
	}
	for _, typ := range sortedKeys(count) {
		if !listed[typ] {
			t.Errorf("the stack creates %d %s, which README's What the stack creates does not list", count[typ], typ)
		}
	}
}
