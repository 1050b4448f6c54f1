package templatecheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method"}

func TestAPIMethodsUseIAMAuth(t *testing.T) {
	_, tp := load(t)
	apis := tp.ofType("AWS::ApiGateway::RestApi")
	if len(apis) == 0 {
		t.Fatal("the translated template has no REST API")
	}
	methods := 0
	for id, api := range apis {
		body := obj(api.Properties["Body"])
		if body == nil {
			t.Errorf("REST API %s has no inline Body; its methods cannot be checked", id)
			continue
		}
		sigv4 := map[string]bool{}
		for name, def := range obj(body["securityDefinitions"]) {
			if strings.EqualFold(str(obj(def)["x-amazon-apigateway-authtype"]), "awsSigv4") {
				sigv4[name] = true
			}
		}
		for path, item := range obj(body["paths"]) {
			for _, m := range httpMethods {
				op := obj(obj(item)[m])
				if op == nil {
					continue
				}
				methods++
				iam := strings.EqualFold(str(obj(op["x-amazon-apigateway-auth"])["type"]), "AWS_IAM")
				for _, sec := range list(op["security"]) {
					for name := range obj(sec) {
						iam = iam || sigv4[name]
					}
				}
				if !iam {
					t.Errorf("API %s: %s %s does not require AWS_IAM (SigV4) auth", id, strings.ToUpper(m), path)
				}
			}
		}
	}
	for id, m := range tp.ofType("AWS::ApiGateway::Method") {
		methods++
		if a := str(m.Properties["AuthorizationType"]); a != "AWS_IAM" {
			t.Errorf("API method %s: AuthorizationType %q, want AWS_IAM", id, a)
		}
	}
	if methods == 0 {
		t.Error("no API methods found; the check would prove nothing")
	}
	for id, u := range tp.ofType("AWS::Lambda::Url") {
		if a := str(u.Properties["AuthType"]); a != "AWS_IAM" {
			t.Errorf("function URL %s: AuthType %q, want AWS_IAM", id, a)
		}
	}
	// HTTP APIs are public by design and checked by TestQueryAPIIsTheOnlyPublicAPI.
}

func TestStateMachinesLog(t *testing.T) {
	_, tp := load(t)
	sms := tp.ofType("AWS::StepFunctions::StateMachine")
	if len(sms) == 0 {
		t.Fatal("the translated template has no state machines")
	}
	for id, sm := range sms {
		lc := obj(sm.Properties["LoggingConfiguration"])
		if lc == nil {
			t.Errorf("state machine %s has no LoggingConfiguration", id)
			continue
		}
		if l := str(lc["Level"]); l != "ALL" && l != "ERROR" && l != "FATAL" {
			t.Errorf("state machine %s: logging Level %q, want ALL, ERROR or FATAL", id, l)
		}
		if v, ok := lc["IncludeExecutionData"].(bool); !ok || v {
			t.Errorf("state machine %s: IncludeExecutionData %v, want false (payloads are not logged)", id, lc["IncludeExecutionData"])
		}
		dests := list(lc["Destinations"])
		if len(dests) == 0 {
			t.Errorf("state machine %s: logging has no destination", id)
		}
		for _, d := range dests {
			if obj(obj(d)["CloudWatchLogsLogGroup"])["LogGroupArn"] == nil {
				t.Errorf("state machine %s: destination %v is not a CloudWatch Logs log group", id, d)
			}
		}
	}
}

func TestFunctionsBuildWithMakefile(t *testing.T) {
	src, _ := load(t)
	fns := src.ofType("AWS::Serverless::Function")
	if len(fns) == 0 {
		t.Fatal("template.yaml has no AWS::Serverless::Function")
	}
	makefile, err := os.ReadFile(filepath.Join(tpl.root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for id, fn := range fns {
		if bm := str(fn.Metadata["BuildMethod"]); bm != "makefile" {
			t.Errorf("function %s: Metadata.BuildMethod %q, want makefile", id, bm)
		}
		// sam build calls build-<LogicalId>: an explicit target, or the pattern
		// rule that builds <Name>Function from functions/<name>.
		target := regexp.MustCompile(`(?m)^build-` + regexp.QuoteMeta(id) + `:`)
		if target.Match(makefile) {
			continue
		}
		stem, ok := strings.CutSuffix(id, "Function")
		if !ok || !patternRule.Match(makefile) {
			t.Errorf("function %s: the Makefile has no build-%s target, which sam build calls", id, id)
			continue
		}
		dir := filepath.Join(tpl.root, "functions", strings.ToLower(stem))
		if gos, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(gos) == 0 {
			t.Errorf("function %s: the Makefile's build-%%Function rule builds it from %s, which holds no Go package", id, dir)
		}
	}
}

// patternRule is the Makefile's rule for every build-<Name>Function target.
var patternRule = regexp.MustCompile(`(?m)^build-%Function:`)

// placeholder is a DefinitionSubstitutions reference in an ASL file.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

func TestStateMachineDefinitions(t *testing.T) {
	src, _ := load(t)
	sms := src.ofType("AWS::Serverless::StateMachine")
	if len(sms) == 0 {
		t.Fatal("template.yaml has no AWS::Serverless::StateMachine")
	}
	fns := src.ofType("AWS::Serverless::Function")
	for _, id := range sortedKeys(sms) {
		sm := sms[id]
		t.Run(id, func(t *testing.T) {
			uri := str(sm.Properties["DefinitionUri"])
			if uri == "" {
				t.Fatalf("DefinitionUri is not a local file path: %v", sm.Properties["DefinitionUri"])
			}
			def, err := os.ReadFile(filepath.Join(tpl.root, uri))
			if err != nil {
				t.Fatalf("DefinitionUri %s: %v", uri, err)
			}
			used := map[string]bool{}
			for _, m := range placeholder.FindAllSubmatch(def, -1) {
				used[string(m[1])] = true
			}
			subs := obj(sm.Properties["DefinitionSubstitutions"])
			for name := range used {
				if _, ok := subs[name]; !ok {
					t.Errorf("%s uses ${%s}, which DefinitionSubstitutions does not define", uri, name)
				}
			}
			// Functions substituted in, and functions the role may invoke;
			// state machines substituted in (nested executions), and state
			// machines the role may start: each pair of sets must be equal.
			substituted, nested := map[string]bool{}, map[string]bool{}
			for name, v := range subs {
				if !used[name] {
					t.Errorf("DefinitionSubstitutions defines %s, which %s does not use", name, uri)
				}
				if ref := str(obj(v)["Ref"]); ref != "" && sms[ref].Type != "" {
					nested[ref] = true
					continue
				}
				ga := getAtt(v)
				if len(ga) != 2 || ga[1] != "Arn" || fns[ga[0]].Type == "" {
					t.Errorf("DefinitionSubstitutions %s = %v, want !GetAtt <Function>.Arn of a function or !Ref <StateMachine> of a state machine in template.yaml", name, v)
					continue
				}
				substituted[ga[0]] = true
			}
			invokable, startable := map[string]bool{}, map[string]bool{}
			for _, p := range list(sm.Properties["Policies"]) {
				if lp := obj(obj(p)["LambdaInvokePolicy"]); lp != nil {
					invokable[str(obj(lp["FunctionName"])["Ref"])] = true
				}
				for _, machine := range startsExecutionsOf(src, p) {
					startable[machine] = true
				}
			}
			if a, b := sortedKeys(substituted), sortedKeys(invokable); !slices.Equal(a, b) {
				t.Errorf("functions substituted into %s: %v; functions its role may invoke (LambdaInvokePolicy): %v; they must be the same", uri, a, b)
			}
			if a, b := sortedKeys(nested), sortedKeys(startable); !slices.Equal(a, b) {
				t.Errorf("state machines substituted into %s: %v; state machines its role may start (states:StartExecution): %v; they must be the same", uri, a, b)
			}
		})
	}
}

// startsExecutionsOf lists the state machines (by logical id) on which a
// state machine's policy (inline, or a Ref to a managed policy of the
// template) allows states:StartExecution.
func startsExecutionsOf(src Template, policy any) []string {
	doc := obj(policy)
	if ref := str(doc["Ref"]); ref != "" {
		doc = obj(src.Resources[ref].Properties["PolicyDocument"])
	}
	var out []string
	for _, s := range list(doc["Statement"]) {
		st := obj(s)
		if str(st["Effect"]) != "Allow" || !slices.ContainsFunc(list(st["Action"]), func(a any) bool { return str(a) == "states:StartExecution" }) {
			continue
		}
		for _, r := range list(st["Resource"]) {
			if ref := str(obj(r)["Ref"]); ref != "" {
				out = append(out, ref)
			}
		}
	}
	return out
}

func getAtt(v any) []string {
	if s := str(obj(v)["Fn::GetAtt"]); s != "" {
		return strings.SplitN(s, ".", 2)
	}
	var out []string
	for _, e := range list(obj(v)["Fn::GetAtt"]) {
		out = append(out, str(e))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestNoHardcodedAccountOrRegion reads template.yaml and the files it
// includes (AWS::Include Location) as text: account ids and regions come from
// AWS::AccountId and AWS::Region only.
func TestNoHardcodedAccountOrRegion(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"template.yaml": string(text)}
	for _, m := range includeLocation.FindAllStringSubmatch(string(text), -1) {
		b, err := os.ReadFile(filepath.Join(root, m[1]))
		if err != nil {
			t.Fatalf("template.yaml includes %s: %v", m[1], err)
		}
		files[m[1]] = string(b)
	}
	if len(files) < 2 {
		t.Fatal("template.yaml includes no file; the API's OpenAPI body is expected in one (AWS::Include)")
	}
	account := regexp.MustCompile(`\b[0-9]{12}\b`)
	region := regexp.MustCompile(`\b(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov)-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[0-9]\b`)
	for name, text := range files {
		for i, line := range strings.Split(text, "\n") {
			if m := account.FindString(line); m != "" {
				t.Errorf("%s:%d: %q looks like an account id; use ${AWS::AccountId}", name, i+1, m)
			}
			if m := region.FindString(line); m != "" {
				t.Errorf("%s:%d: %q is a region; use ${AWS::Region}", name, i+1, m)
			}
		}
	}
}

// includeLocation finds the local files template.yaml includes.
var includeLocation = regexp.MustCompile(`(?m)^\s*Location:\s*["']?([\w./-]+\.(?:yaml|yml|json))["']?\s*$`)

// TestCfnLint runs cfn-lint on template.yaml; any finding (error, warning or
// informational) fails.
func TestCfnLint(t *testing.T) {
	needTool(t, "cfn-lint", pinnedTools)
	cmd := exec.Command("cfn-lint", "template.yaml")
	cmd.Dir = repoRoot(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || out.Len() > 0 {
		t.Errorf("cfn-lint template.yaml: %v\n%s", errOrClean(err), out.String())
	}
}

func errOrClean(err error) string {
	if err == nil {
		return "exit 0 but printed"
	}
	return fmt.Sprint(err)
}
