package templatecheck

import (
	"regexp"
	"strings"
	"testing"
)

// TestFunctionsMayReadTheManifestsTheyCheck: every function that reads an
// archive's manifest may GetObject it. Without the grant S3 answers 403:
// record, which accepts a backup only when its manifest says verified,
// would leave every backup unrecorded.
func TestFunctionsMayReadTheManifestsTheyCheck(t *testing.T) {
	_, tp := load(t)
	const manifest = "arn:aws:s3:::bucket/sds-exports/a1/Stores/2024/06/01/j1.xml.manifest.json"
	for _, fn := range []string{"CopyToS3Function", "ConvertFunction", "RestoreFunction", "RecordFunction", "InventoryFunction"} {
		role, ok := tp.Resources[fn+"Role"]
		if !ok {
			t.Errorf("%s has no role %sRole in the translated template", fn, fn)
			continue
		}
		var docs []any
		for _, p := range list(role.Properties["Policies"]) {
			docs = append(docs, obj(p)["PolicyDocument"])
		}
		for _, arn := range list(role.Properties["ManagedPolicyArns"]) {
			if ref := str(obj(arn)["Ref"]); ref != "" {
				docs = append(docs, tp.Resources[ref].Properties["PolicyDocument"])
			}
		}
		if !allows(docs, "s3:GetObject", manifest) {
			t.Errorf("%s may not read %s", fn, manifest)
		}
	}
}

// allows reports whether an Allow statement of docs grants action on arn,
// with the template's parameters as the stack's defaults.
func allows(docs []any, action, arn string) bool {
	vars := strings.NewReplacer("${AWS::Partition}", "aws", "${Bucket}", "bucket", "${ArchivePrefix}", "sds-exports/")
	for _, doc := range docs {
		for _, s := range list(obj(doc)["Statement"]) {
			body := obj(s)
			if str(body["Effect"]) != "Allow" || !contains(list(body["Action"]), action) {
				continue
			}
			for _, r := range list(body["Resource"]) {
				pattern := str(r)
				if sub := list(obj(r)["Fn::Sub"]); len(sub) > 0 {
					pattern = str(sub[0])
				}
				re := "^" + strings.ReplaceAll(regexp.QuoteMeta(vars.Replace(pattern)), `\*`, ".*") + "$"
				if regexp.MustCompile(re).MatchString(arn) {
					return true
				}
			}
		}
	}
	return false
}

func contains(l []any, s string) bool {
	for _, v := range l {
		if str(v) == s {
			return true
		}
	}
	return false
}
