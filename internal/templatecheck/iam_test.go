package templatecheck

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// resourceStarAllowed lists the only actions an Allow statement may grant on
// Resource "*", each with the reason. A statement with Resource "*" passes
// only when every one of its actions is listed here.
var resourceStarAllowed = map[string]string{
	// Step Functions logging to CloudWatch Logs: the Step Functions
	// developer guide ("IAM policies for logging to CloudWatch Logs")
	// requires these on "*"; they do not support resource-level permissions.
	"logs:CreateLogDelivery":        "Step Functions log delivery: no resource-level permissions",
	"logs:GetLogDelivery":           "Step Functions log delivery: no resource-level permissions",
	"logs:UpdateLogDelivery":        "Step Functions log delivery: no resource-level permissions",
	"logs:DeleteLogDelivery":        "Step Functions log delivery: no resource-level permissions",
	"logs:ListLogDeliveries":        "Step Functions log delivery: no resource-level permissions",
	"logs:PutResourcePolicy":        "Step Functions log delivery: no resource-level permissions",
	"logs:DescribeResourcePolicies": "Step Functions log delivery: no resource-level permissions",
	"logs:DescribeLogGroups":        "Step Functions log delivery: no resource-level permissions",
}

// managedPolicyAllowed lists the AWS managed policies a role may carry, with
// the reason. Policies of this template (Ref to an AWS::IAM::ManagedPolicy)
// are checked statement by statement instead.
var managedPolicyAllowed = map[string]string{
	"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": "added by SAM to every function: write its own logs",
	"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess":                   "added by SAM when TracingMode is Active: send trace segments",
}

// statement is one IAM policy statement with where it was found.
type statement struct {
	where string
	body  map[string]any
}

// policyStatements collects every statement of every identity and resource
// policy in the translated template, under every Fn::If branch.
func policyStatements(t *testing.T, tp Template) []statement {
	t.Helper()
	var out []statement
	add := func(where string, doc any) {
		for i, s := range list(obj(doc)["Statement"]) {
			body := obj(s)
			if body == nil {
				t.Errorf("%s: statement %d is not an object: %v", where, i, s)
				continue
			}
			w := fmt.Sprintf("%s statement %d", where, i)
			if sid := str(body["Sid"]); sid != "" {
				w = fmt.Sprintf("%s statement %q", where, sid)
			}
			out = append(out, statement{where: w, body: body})
		}
	}
	for id, r := range tp.Resources {
		switch r.Type {
		case "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group":
			for _, p := range list(r.Properties["Policies"]) {
				add(fmt.Sprintf("%s policy %s", id, str(obj(p)["PolicyName"])), obj(p)["PolicyDocument"])
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			add(id, r.Properties["PolicyDocument"])
		case "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy":
			add(id, r.Properties["PolicyDocument"])
		}
	}
	return out
}

func TestIAMStatementsAreNarrow(t *testing.T) {
	_, tp := load(t)
	stmts := policyStatements(t, tp)
	if len(stmts) == 0 {
		t.Fatal("no IAM statements found in the translated template; the check would prove nothing")
	}
	for _, s := range stmts {
		effect := str(s.body["Effect"])
		if effect == "Deny" {
			continue // a Deny may be as broad as it likes (the TLS-only bucket policy denies s3:*)
		}
		if effect != "Allow" {
			t.Errorf("%s: Effect is %q, want Allow or Deny", s.where, effect)
			continue
		}
		if _, ok := s.body["NotAction"]; ok {
			t.Errorf("%s: an Allow with NotAction grants everything but the listed actions; list the actions instead", s.where)
		}
		if _, ok := s.body["NotResource"]; ok {
			t.Errorf("%s: an Allow with NotResource grants every other resource; list the resources instead", s.where)
		}
		if p := s.body["Principal"]; p != nil && isStar(p) {
			t.Errorf("%s: an Allow to Principal \"*\" opens the resource to everyone", s.where)
		}
		var actions []string
		for _, a := range list(s.body["Action"]) {
			as, ok := a.(string)
			if !ok {
				t.Errorf("%s: action %v is not a plain string; the check cannot read it", s.where, a)
				continue
			}
			actions = append(actions, as)
			if strings.ContainsAny(as, "*?") {
				t.Errorf("%s: wildcard action %q in an Allow; name the actions (wildcards are allowed only in Deny statements)", s.where, as)
			}
		}
		for _, r := range list(s.body["Resource"]) {
			if str(r) != "*" {
				continue
			}
			var unlisted []string
			for _, a := range actions {
				if _, ok := resourceStarAllowed[a]; !ok {
					unlisted = append(unlisted, a)
				}
			}
			if len(unlisted) > 0 {
				sort.Strings(unlisted)
				t.Errorf("%s: Resource \"*\" for %s; these actions support narrower resources (only the actions in resourceStarAllowed may use \"*\", each with its reason)",
					s.where, strings.Join(unlisted, ", "))
			}
		}
	}
}

func isStar(p any) bool {
	if str(p) == "*" {
		return true
	}
	for _, v := range obj(p) {
		for _, e := range list(v) {
			if str(e) == "*" {
				return true
			}
		}
	}
	return false
}

func TestManagedPoliciesAreKnown(t *testing.T) {
	_, tp := load(t)
	own := tp.ofType("AWS::IAM::ManagedPolicy")
	for id, r := range tp.ofType("AWS::IAM::Role") {
		for _, p := range list(r.Properties["ManagedPolicyArns"]) {
			if ref := str(obj(p)["Ref"]); ref != "" {
				if _, ok := own[ref]; !ok {
					t.Errorf("role %s: managed policy Ref %s is not an AWS::IAM::ManagedPolicy of this template", id, ref)
				}
				continue
			}
			arn := normalizePartition(p)
			if _, ok := managedPolicyAllowed[arn]; !ok {
				t.Errorf("role %s: managed policy %v is not in managedPolicyAllowed; add it there with the reason, or use a statement of this template", id, p)
			}
		}
	}
}

// normalizePartition turns SAM's partition-aware managed policy ARN
// (Fn::Sub arn:${AWS::Partition}:iam::aws:policy/...) into the aws form.
func normalizePartition(p any) string {
	if s, ok := p.(string); ok {
		return s
	}
	if s := str(obj(p)["Fn::Sub"]); s != "" {
		return strings.ReplaceAll(s, "${AWS::Partition}", "aws")
	}
	return fmt.Sprint(p)
}

func TestArchiveBucketIsPrivate(t *testing.T) {
	_, tp := load(t)
	buckets := tp.ofType("AWS::S3::Bucket")
	if len(buckets) == 0 {
		t.Fatal("template.yaml creates no S3 bucket; the archive bucket is missing")
	}
	for id, b := range buckets {
		pab := obj(b.Properties["PublicAccessBlockConfiguration"])
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if v, _ := pab[k].(bool); !v {
				t.Errorf("bucket %s: PublicAccessBlockConfiguration.%s is %v, want true", id, k, pab[k])
			}
		}
		var owner []string
		for _, r := range list(obj(b.Properties["OwnershipControls"])["Rules"]) {
			owner = append(owner, str(obj(r)["ObjectOwnership"]))
		}
		if !slices.Equal(owner, []string{"BucketOwnerEnforced"}) {
			t.Errorf("bucket %s: OwnershipControls %v, want BucketOwnerEnforced (ACLs off)", id, owner)
		}
		if v := str(obj(b.Properties["VersioningConfiguration"])["Status"]); v != "Enabled" {
			t.Errorf("bucket %s: versioning %q, want Enabled", id, v)
		}
		enc := list(obj(b.Properties["BucketEncryption"])["ServerSideEncryptionConfiguration"])
		if len(enc) == 0 {
			t.Errorf("bucket %s: no default encryption", id)
		}
		for _, e := range enc {
			for _, d := range branches(obj(e)["ServerSideEncryptionByDefault"]) {
				if alg := str(obj(d)["SSEAlgorithm"]); alg != "AES256" && alg != "aws:kms" {
					t.Errorf("bucket %s: SSEAlgorithm %q, want AES256 or aws:kms", id, alg)
				}
			}
		}
		if b.DeletionPolicy != "Retain" || b.UpdateReplacePolicy != "Retain" {
			t.Errorf("bucket %s: DeletionPolicy %q, UpdateReplacePolicy %q; want Retain for both (archives outlive the stack)", id, b.DeletionPolicy, b.UpdateReplacePolicy)
		}
		abort := false
		for _, r := range list(obj(b.Properties["LifecycleConfiguration"])["Rules"]) {
			if obj(r)["AbortIncompleteMultipartUpload"] != nil && str(obj(r)["Status"]) == "Enabled" {
				abort = true
			}
		}
		if !abort {
			t.Errorf("bucket %s: no enabled lifecycle rule aborts incomplete multipart uploads", id)
		}
	}
}

func TestArchiveBucketIsTLSOnly(t *testing.T) {
	_, tp := load(t)
	policies := tp.ofType("AWS::S3::BucketPolicy")
	for id := range tp.ofType("AWS::S3::Bucket") {
		found := false
		for pid, p := range policies {
			if str(obj(p.Properties["Bucket"])["Ref"]) != id {
				continue
			}
			for _, s := range list(obj(p.Properties["PolicyDocument"])["Statement"]) {
				if denysInsecureTransport(obj(s), id) {
					found = true
				}
			}
			if !found {
				t.Errorf("bucket policy %s of %s has no statement denying s3:* on the bucket and its objects when aws:SecureTransport is false", pid, id)
			}
		}
		if !found {
			t.Errorf("bucket %s: no bucket policy denies requests without TLS (Deny, Principal *, s3:*, Bool aws:SecureTransport false, on the bucket and bucket/*)", id)
		}
	}
}

func denysInsecureTransport(s map[string]any, bucket string) bool {
	if str(s["Effect"]) != "Deny" || !isStar(s["Principal"]) {
		return false
	}
	if !slices.ContainsFunc(list(s["Action"]), func(a any) bool { return str(a) == "s3:*" || str(a) == "*" }) {
		return false
	}
	v := obj(obj(s["Condition"])["Bool"])["aws:SecureTransport"]
	if str(v) != "false" && v != false {
		return false
	}
	var bucketARN, objects bool
	for _, r := range list(s["Resource"]) {
		if ga, ok := obj(r)["Fn::GetAtt"].([]any); ok && len(ga) == 2 && str(ga[0]) == bucket && str(ga[1]) == "Arn" {
			bucketARN = true
		}
		if sub := str(obj(r)["Fn::Sub"]); sub == "${"+bucket+".Arn}/*" {
			objects = true
		}
	}
	return bucketARN && objects
}

// TestAPIDescribesEveryStateMachine: GET /executions/{id} (and so the CLI's
// wait) reads executions of every state machine of the stack, the nested and
// scheduled ones included; a state machine left out answers 403 on AWS only.
func TestAPIDescribesEveryStateMachine(t *testing.T) {
	src, _ := load(t)
	role, ok := src.Resources["ApiStatesRole"]
	if !ok {
		t.Fatal("template.yaml has no ApiStatesRole")
	}
	ref := regexp.MustCompile(`:execution:\$\{(\w+)\.Name\}:\*$`)
	described := map[string]bool{}
	for _, p := range list(role.Properties["Policies"]) {
		for _, s := range list(obj(obj(p)["PolicyDocument"])["Statement"]) {
			body := obj(s)
			if !slices.ContainsFunc(list(body["Action"]), func(a any) bool { return a == "states:DescribeExecution" }) {
				continue
			}
			for _, r := range list(body["Resource"]) {
				if m := ref.FindStringSubmatch(fmt.Sprint(obj(r)["Fn::Sub"])); m != nil {
					described[m[1]] = true
				}
			}
		}
	}
	machines := src.ofType("AWS::Serverless::StateMachine")
	if len(machines) == 0 {
		t.Fatal("template.yaml has no state machines")
	}
	for id := range machines {
		if !described[id] {
			t.Errorf("ApiStatesRole may not describe executions of %s: GET /executions/{id} answers 403 for them", id)
		}
	}
}
