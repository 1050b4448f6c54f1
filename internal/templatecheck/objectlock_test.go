package templatecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Values the combinations give the Object Lock and replication parameters.
const (
	testDestination = "arn:aws:s3:::sdsops-archive-replica"
	testArchiveKMS  = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
	testReplicaKMS  = "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000"
)

// combo is one set of parameter values, and the Rules that refuse it
// (none when CloudFormation takes it).
type combo struct {
	name      string
	params    map[string]string
	refusedBy []string
	lint      bool // cfn-lint and sam validate it too
}

// lockCombos: Object Lock off, GOVERNANCE or COMPLIANCE; replication off,
// on, or on with SSE-KMS archives; the stack's bucket or an existing one.
func lockCombos() []combo {
	var out []combo
	for _, lock := range []string{"", "GOVERNANCE", "COMPLIANCE"} {
		for _, repl := range []string{"off", "on", "kms", "kms without replica key"} {
			for _, existing := range []bool{false, true} {
				if existing && strings.HasPrefix(repl, "kms") {
					continue // refused as "on" is: nothing more to see
				}
				p := map[string]string{"ArchiveObjectLockMode": lock}
				c := combo{params: p}
				if repl != "off" {
					p["ArchiveReplicationDestinationArn"] = testDestination
				}
				if strings.HasPrefix(repl, "kms") {
					p["ArchiveKmsKeyArn"] = testArchiveKMS
				}
				if repl == "kms" {
					p["ArchiveReplicationKmsKeyArn"] = testReplicaKMS
				}
				if existing {
					p["ExistingBucketName"] = testExistingBucket
				}
				if existing && lock != "" {
					c.refusedBy = append(c.refusedBy, "ObjectLockNeedsTheStacksBucket")
				}
				if existing && repl != "off" {
					c.refusedBy = append(c.refusedBy, "ReplicationNeedsTheStacksBucket")
				}
				if repl == "kms without replica key" {
					c.refusedBy = append(c.refusedBy, "ReplicatedKmsArchivesNeedAReplicaKey")
				}
				// The template is the same as with "kms" but for one
				// empty parameter; only the Rule tells them apart.
				c.lint = repl != "kms without replica key"
				c.name = fmt.Sprintf("lock=%s replication=%s existing-bucket=%v", cmp(lock, "off"), repl, existing)
				out = append(out, c)
			}
		}
	}
	return out
}

func cmp(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// withDefaults is the template's text with the parameters' defaults set
// to values: how cfn-lint and sam validate, which read no parameter values,
// see a deployment with them.
func withDefaults(t *testing.T, text string, values map[string]string) string {
	t.Helper()
	for name, v := range values {
		re := regexp.MustCompile(`(?m)^(  ` + regexp.QuoteMeta(name) + `:\n(?:    .*\n)*?    Default: ).*$`)
		if !re.MatchString(text) {
			t.Fatalf("template.yaml: no Default line for parameter %s", name)
		}
		text = re.ReplaceAllString(text, "${1}"+fmt.Sprintf("%q", v))
	}
	return text
}

// evalRuleFn evaluates a Rules function (Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, Ref) with params, else the parameter's default.
func evalRuleFn(t *testing.T, tp Template, params map[string]string, v any) any {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	m := obj(v)
	if len(m) != 1 {
		t.Fatalf("rule function %v", v)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Ref":
			name := str(arg)
			if val, ok := params[name]; ok {
				return val
			}
			p, ok := tp.Parameters[name]
			if !ok {
				t.Fatalf("rule refers to %s, not a parameter", name)
			}
			return fmt.Sprint(p["Default"])
		case "Fn::Equals":
			return evalRuleFn(t, tp, params, args[0]) == evalRuleFn(t, tp, params, args[1])
		case "Fn::Not":
			return !evalRuleFn(t, tp, params, args[0]).(bool)
		case "Fn::And", "Fn::Or":
			all, some := true, false
			for _, a := range args {
				b := evalRuleFn(t, tp, params, a).(bool)
				all, some = all && b, some || b
			}
			if fn == "Fn::And" {
				return all
			}
			return some
		}
		t.Fatalf("rule function %s is not evaluated by the test", fn)
	}
	return nil
}

// refusals returns the Rules that refuse params, with their descriptions.
func refusals(t *testing.T, tp Template, params map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, r := range tp.Rules {
		if r.RuleCondition != nil && !evalRuleFn(t, tp, params, r.RuleCondition).(bool) {
			continue
		}
		for _, a := range r.Assertions {
			if !evalRuleFn(t, tp, params, a.Assert).(bool) {
				out[name] = a.AssertDescription
			}
		}
	}
	return out
}

// TestObjectLockParameterCombinations: with every combination of Object
// Lock mode, replication (with and without SSE-KMS) and bucket, the
// template passes cfn-lint and `sam validate --lint` with no finding, and
// CloudFormation's Rules refuse exactly the combinations that cannot work
// (Object Lock or replication on a bucket the stack does not create, KMS
// replication without a replica key), saying why.
func TestObjectLockParameterCombinations(t *testing.T) {
	source, _ := load(t)
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// DefinitionUri and the API's AWS::Include name files under statemachine/.
	if err := os.Symlink(filepath.Join(root, "statemachine"), filepath.Join(dir, "statemachine")); err != nil {
		t.Fatal(err)
	}
	combos := lockCombos()
	var (
		files  []string
		linted []combo
	)
	for i, c := range combos {
		got := refusals(t, source, c.params)
		var names []string
		for rule, why := range got {
			names = append(names, rule)
			t.Logf("%s: refused by %s: %s", c.name, rule, why)
		}
		slices.Sort(names)
		slices.Sort(c.refusedBy)
		if !slices.Equal(names, c.refusedBy) {
			t.Errorf("%s: refused by %v, want %v", c.name, names, c.refusedBy)
		}
		if !c.lint {
			continue
		}
		f := filepath.Join(dir, fmt.Sprintf("combo-%02d.yaml", i))
		if err := os.WriteFile(f, []byte(withDefaults(t, string(raw), c.params)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		linted = append(linted, c)
	}
	t.Logf("%d combinations, %d linted", len(combos), len(files))

	t.Run("cfn-lint", func(t *testing.T) {
		needTool(t, "cfn-lint", pinnedTools)
		// One run for all: a finding names its file.
		out, err := runIn(dir, "cfn-lint", files...)
		if err != nil || len(out) > 0 {
			for i, f := range files {
				out = strings.ReplaceAll(out, f, linted[i].name)
			}
			t.Errorf("cfn-lint: %v\n%s", errOrClean(err), out)
		}
	})
	t.Run("sam validate --lint", func(t *testing.T) {
		if testing.Short() {
			t.Skip("sam validate of every combination: about 10 s each")
		}
		needTool(t, "sam", pinnedTools)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 2)
		for i, f := range files {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				out, err := runIn(dir, "sam", "validate", "--lint", "--template-file", f)
				if err != nil || !strings.Contains(out, "is a valid SAM Template") || strings.Contains(strings.ToLower(out), "warning") {
					t.Errorf("sam validate --lint, %s: %v\n%s", linted[i].name, err, out)
				}
			})
		}
		wg.Wait()
	})
}

// compact is v as compact JSON.
func compact(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestObjectLockBucketAndGrants: Object Lock is enabled on the stack's
// bucket exactly when a mode is set, versioning always; the two functions
// that write what must not be lost get the mode and days, and may set a
// retention only on those keys; nothing may bypass a governance lock.
func TestObjectLockBucketAndGrants(t *testing.T) {
	source, tp := load(t)
	b := source.Resources["ArchiveBucket"].Properties
	if v := obj(b["VersioningConfiguration"])["Status"]; v != "Enabled" {
		t.Errorf("bucket versioning %v: Object Lock needs it Enabled, unconditionally", v)
	}
	if ol, ok := obj(b["ObjectLockEnabled"])["Fn::If"].([]any); !ok || str(ol[0]) != "HasObjectLock" || ol[1] != true {
		t.Errorf("bucket ObjectLockEnabled %v: want true under HasObjectLock", b["ObjectLockEnabled"])
	}
	if _, ok := b["ObjectLockConfiguration"]; ok {
		t.Error("a default retention rule would lock the catalog records too: retention is set per object")
	}
	for _, fn := range []string{"CopyToS3Function", "ConvertFunction"} {
		vars := obj(obj(source.Resources[fn].Properties["Environment"])["Variables"])
		if str(obj(vars["ARCHIVE_LOCK_MODE"])["Ref"]) != "ArchiveObjectLockMode" || str(obj(vars["ARCHIVE_LOCK_DAYS"])["Ref"]) != "ArchiveObjectLockDays" {
			t.Errorf("%s: ARCHIVE_LOCK_MODE %v, ARCHIVE_LOCK_DAYS %v", fn, vars["ARCHIVE_LOCK_MODE"], vars["ARCHIVE_LOCK_DAYS"])
		}
	}

	base := testArchivePrefix + "20181f26d9e94c81acdf9496133d4f23/Stores-2019/2026/11/29/8ccf2a5b428d423c92759150dcddc338"
	copier := functionStatements(t, tp, "CopyToS3Function")
	convert := functionStatements(t, tp, "ConvertFunction")
	arn := func(key string) string { return "arn:" + testPartition + ":s3:::" + testBucket + "/" + key }
	for _, c := range []struct {
		who   string
		stmts []map[string]any
		key   string
		want  bool
	}{
		{"copytos3", copier, base + ".xml", true},
		{"copytos3", copier, base + ".xml.manifest.json", true},
		{"copytos3", copier, base + ".xml.claim", false},
		{"copytos3", copier, base + ".geojson", false},
		{"convert", convert, base + ".geojson", true},
		{"convert", convert, base + ".schema.json", true},
		{"convert", convert, base + ".parquet", true},
		{"convert", convert, base + ".xml.manifest.json", true},
		{"convert", convert, base + ".xml", false},
		{"convert", convert, "catalog/v1/index.json", false},
	} {
		if got := allowed(t, c.stmts, "s3:PutObjectRetention", arn(c.key)); got != c.want {
			t.Errorf("%s may s3:PutObjectRetention on %s: %v, want %v", c.who, c.key, got, c.want)
		}
	}
	for _, s := range policyStatements(t, tp) {
		for _, a := range list(s.body["Action"]) {
			if str(s.body["Effect"]) == "Allow" && slices.Contains([]string{"s3:bypassgovernanceretention", "s3:replicatedelete", "s3:putbucketobjectlockconfiguration"}, strings.ToLower(str(a))) {
				t.Errorf("%s allows %s", s.where, str(a))
			}
		}
	}
}

// TestReplicationRole: S3 alone assumes the replication role, for this
// account; it reads the archive prefix's versions and writes replicas under
// the same prefix of the destination, nothing else.
func TestReplicationRole(t *testing.T) {
	source, _ := load(t)
	role, ok := source.Resources["ArchiveReplicationRole"]
	if !ok || role.Condition != "HasReplication" {
		t.Fatalf("ArchiveReplicationRole %+v: want one under HasReplication", role)
	}
	for _, s := range list(obj(role.Properties["AssumeRolePolicyDocument"])["Statement"]) {
		p := obj(obj(s)["Principal"])
		if str(p["Service"]) != "s3.amazonaws.com" || len(p) != 1 || obj(obj(s)["Condition"])["StringEquals"] == nil {
			t.Errorf("trust statement %v: want s3.amazonaws.com only, for this account", s)
		}
	}
	pol := source.Resources["ArchiveReplicationPolicy"]
	if pol.Condition != "HasReplication" {
		t.Errorf("ArchiveReplicationPolicy condition %q", pol.Condition)
	}
	want := map[string]string{
		"ReadReplicationConfiguration": `{"Fn::GetAtt":["ArchiveBucket","Arn"]}`,
		"ReadArchiveVersions":          `{"Fn::Sub":"${ArchiveBucket.Arn}/${ArchivePrefix}*"}`,
		"WriteReplicas":                `{"Fn::Sub":"${ArchiveReplicationDestinationArn}/${ArchivePrefix}*"}`,
		"DecryptArchives":              `{"Ref":"ArchiveKmsKeyArn"}`,
		"EncryptReplicas":              `{"Ref":"ArchiveReplicationKmsKeyArn"}`,
	}
	seen := 0
	for _, s := range list(obj(pol.Properties["PolicyDocument"])["Statement"]) {
		sid := str(obj(s)["Sid"])
		w, ok := want[sid]
		if !ok {
			t.Errorf("unexpected replication statement %v", s)
			continue
		}
		seen++
		if got := compact(t, obj(s)["Resource"]); got != w {
			t.Errorf("%s: resource %s, want %s", sid, got, w)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d replication statements found", seen, len(want))
	}
}
