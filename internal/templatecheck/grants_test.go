package templatecheck

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"testing"
)

// Values the grant tests give the template's parameters and resources.
const (
	testBucket         = "sdsops-archive"
	testExistingBucket = "existing-archive"
	testArchivePrefix  = "sds-exports/"
)

// grantVars resolves the references of the template's IAM statements.
// Under either bucket condition the bucket is one of two names: each
// Fn::If yields both.
var grantVars = map[string][]string{
	"AWS::Partition":     {testPartition},
	"AWS::Region":        {testRegion},
	"AWS::AccountId":     {testAccount},
	"AWS::StackName":     {testStack},
	"ArchiveBucket":      {testBucket},
	"ExistingBucketName": {testExistingBucket},
	"ArchivePrefix":      {testArchivePrefix},
}

// resolveAll evaluates a value of an IAM statement to every string it can
// take: Ref, Fn::Sub (both forms) and Fn::If (both branches).
func resolveAll(v any) ([]string, error) {
	if s, ok := v.(string); ok {
		return []string{s}, nil
	}
	m := obj(v)
	if ref, ok := m["Ref"].(string); ok && len(m) == 1 {
		if vals, ok := grantVars[ref]; ok {
			return vals, nil
		}
		return nil, fmt.Errorf("Ref %s is not resolved by the test", ref)
	}
	if args, ok := m["Fn::If"].([]any); ok && len(m) == 1 && len(args) == 3 {
		a, err := resolveAll(args[1])
		if err != nil {
			return nil, err
		}
		b, err := resolveAll(args[2])
		return append(a, b...), err
	}
	sub, ok := m["Fn::Sub"]
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("cannot resolve %v", v)
	}
	text, _ := sub.(string)
	locals := map[string][]string{}
	if l, ok := sub.([]any); ok && len(l) == 2 {
		text = str(l[0])
		for k, lv := range obj(l[1]) {
			vals, err := resolveAll(lv)
			if err != nil {
				return nil, fmt.Errorf("Fn::Sub variable %s: %v", k, err)
			}
			locals[k] = vals
		}
	}
	outs := []string{text}
	for _, ref := range subRef.FindAllStringSubmatch(text, -1) {
		name := ref[1]
		vals, ok := locals[name]
		if !ok {
			vals, ok = grantVars[name]
		}
		if !ok {
			return nil, fmt.Errorf("Fn::Sub refers to ${%s}, which the test does not resolve", name)
		}
		var next []string
		for _, o := range outs {
			for _, val := range vals {
				next = append(next, strings.Replace(o, ref[0], val, 1))
			}
		}
		outs = next
	}
	return outs, nil
}

// iamMatch matches an IAM pattern (* any run of characters, ? one) against
// a value, as IAM does for actions (case-insensitively) and resources.
func iamMatch(pattern, value string, fold bool) bool {
	var re strings.Builder
	re.WriteString("^")
	if fold {
		re.WriteString("(?i)")
	}
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(value)
}

// functionStatements returns the statements of the role a function runs
// with: its inline policies and the template's managed policies it carries
// (AWS managed policies are checked by TestManagedPoliciesAreKnown).
func functionStatements(t *testing.T, tp Template, function string) []map[string]any {
	t.Helper()
	fn, ok := tp.Resources[function]
	if !ok || fn.Type != "AWS::Lambda::Function" {
		t.Fatalf("the translated template has no function %s", function)
	}
	ga := getAtt(fn.Properties["Role"])
	role, ok := tp.Resources[ga[0]]
	if len(ga) != 2 || !ok || role.Type != "AWS::IAM::Role" {
		t.Fatalf("function %s: role %v is not a role of the template", function, fn.Properties["Role"])
	}
	var docs []any
	for _, p := range list(role.Properties["Policies"]) {
		docs = append(docs, obj(p)["PolicyDocument"])
	}
	for _, p := range list(role.Properties["ManagedPolicyArns"]) {
		if ref := str(obj(p)["Ref"]); ref != "" {
			docs = append(docs, tp.Resources[ref].Properties["PolicyDocument"])
		}
	}
	var out []map[string]any
	for _, d := range docs {
		for _, s := range list(obj(d)["Statement"]) {
			out = append(out, obj(s))
		}
	}
	return out
}

// allowed reports whether statements allow action on resource (an ARN):
// some Allow matches and no Deny does. Conditions are taken as met, so a
// "not allowed" is certain.
func allowed(t *testing.T, stmts []map[string]any, action, resource string) bool {
	t.Helper()
	matches := func(s map[string]any) bool {
		act := false
		for _, a := range list(s["Action"]) {
			act = act || iamMatch(str(a), action, true)
		}
		if !act {
			return false
		}
		for _, r := range list(s["Resource"]) {
			vals, err := resolveAll(r)
			if err != nil {
				t.Fatalf("statement %v: %v", s, err)
			}
			for _, v := range vals {
				if iamMatch(v, resource, false) {
					return true
				}
			}
		}
		return false
	}
	allow := false
	for _, s := range stmts {
		if matches(s) {
			if str(s["Effect"]) == "Deny" {
				return false
			}
			allow = allow || str(s["Effect"]) == "Allow"
		}
	}
	return allow
}

// TestConvertWritesOnlyItsOutputs: convert reads archives but may write
// only what a conversion produces beside them (GeoJSON, schema document,
// Parquet) and the archive's manifest, which records the conversion. An
// XML archive cannot be overwritten or deleted by it, in either bucket.
func TestConvertWritesOnlyItsOutputs(t *testing.T) {
	_, tp := load(t)
	convert := functionStatements(t, tp, "ConvertFunction")
	copier := functionStatements(t, tp, "CopyToS3Function")
	base := testArchivePrefix + "20181f26d9e94c81acdf9496133d4f23/Stores-2019/2026/11/29/8ccf2a5b428d423c92759150dcddc338"
	for _, bucket := range []string{testBucket, testExistingBucket} {
		arn := func(key string) string { return "arn:" + testPartition + ":s3:::" + bucket + "/" + key }
		for _, c := range []struct {
			who    string
			stmts  []map[string]any
			action string
			key    string
			want   bool
		}{
			{"convert", convert, "s3:GetObject", base + ".xml", true},
			{"convert", convert, "s3:GetObject", base + ".xml.manifest.json", true},
			{"convert", convert, "s3:PutObject", base + ".geojson", true},
			{"convert", convert, "s3:PutObject", base + ".schema.json", true},
			{"convert", convert, "s3:PutObject", base + ".parquet", true},
			{"convert", convert, "s3:PutObject", base + ".xml.manifest.json", true},
			{"convert", convert, "s3:AbortMultipartUpload", base + ".geojson", true},
			{"convert", convert, "s3:PutObject", base + ".xml", false},
			{"convert", convert, "s3:PutObject", path.Dir(base) + "/other.xml", false},
			{"convert", convert, "s3:AbortMultipartUpload", base + ".xml", false},
			{"convert", convert, "s3:DeleteObject", base + ".xml", false},
			{"convert", convert, "s3:DeleteObject", base + ".xml.manifest.json", false},
			{"convert", convert, "s3:PutObject", base + ".load-1.failed.xml", false},
			{"convert", convert, "s3:PutObject", "catalog/v1/index.json", false},
			// The same evaluation grants the archiving function its archive.
			{"copytos3", copier, "s3:PutObject", base + ".xml", true},
		} {
			if got := allowed(t, c.stmts, c.action, arn(c.key)); got != c.want {
				t.Errorf("%s may %s s3://%s/%s: %v, want %v", c.who, c.action, bucket, c.key, got, c.want)
			}
		}
	}
}

// TestOnlyReportDeletesArchives: retention (the report function) may
// delete an archive's objects, write the night's reports and the
// catalog's lastNight, and delete nothing else of the bucket: not the
// catalog, not a report. No other
// function may delete an archive (copytos3 replaces a stale manifest, and
// convert removes the outputs of a failed conversion: their own tests).
func TestOnlyReportDeletesArchives(t *testing.T) {
	_, tp := load(t)
	report := functionStatements(t, tp, "ReportFunction")
	base := testArchivePrefix + "20181f26d9e94c81acdf9496133d4f23/Stores-2019/2026/11/29/8ccf2a5b428d423c92759150dcddc338"
	for _, bucket := range []string{testBucket, testExistingBucket} {
		arn := func(key string) string { return "arn:" + testPartition + ":s3:::" + bucket + "/" + key }
		for _, c := range []struct {
			action, key string
			want        bool
		}{
			{"s3:DeleteObject", base + ".xml", true},
			{"s3:DeleteObject", base + ".xml.manifest.json", true},
			{"s3:DeleteObject", base + ".geojson", true},
			{"s3:DeleteObject", base + ".parquet", true},
			{"s3:GetObjectRetention", base + ".xml", true},
			{"s3:GetObjectLegalHold", base + ".xml", true},
			{"s3:PutObject", "reports/nightly/2026-12-06/night.json", true},
			{"s3:PutObject", "reports/nightly/latest.json", true},
			{"s3:DeleteObject", "catalog/v1/index.json", false},
			{"s3:DeleteObject", "reports/nightly/latest.json", false},
			{"s3:PutObject", "catalog/v1/sources/a1/places.json", true},
			{"s3:PutObject", base + ".xml", false},
			{"s3:PutObject", base + ".xml.manifest.json", false},
			{"s3:DeleteObjectVersion", base + ".xml", false},
			{"s3:PutObjectRetention", base + ".xml", false},
			{"s3:BypassGovernanceRetention", base + ".xml", false},
		} {
			if got := allowed(t, report, c.action, arn(c.key)); got != c.want {
				t.Errorf("report may %s s3://%s/%s: %v, want %v", c.action, bucket, c.key, got, c.want)
			}
		}
		for id := range tp.ofType("AWS::Lambda::Function") {
			if id == "ReportFunction" {
				continue
			}
			if allowed(t, functionStatements(t, tp, id), "s3:DeleteObject", arn(base+".xml")) {
				t.Errorf("%s may delete s3://%s/%s.xml: only retention deletes archives", id, bucket, base)
			}
		}
	}
}
