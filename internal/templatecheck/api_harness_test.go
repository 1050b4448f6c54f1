package templatecheck

// Helpers for the API request tests (api_requests_test.go): the routes of
// the deployed REST API, and two real engines standing in for API Gateway,
// which cannot run here:
//   - testdata/validate_models.py validates bodies against the JSON schema
//     models with python's jsonschema (draft-04), as the request validator
//     does;
//   - testdata/render_vtl.js renders the Velocity mapping templates with
//     velocityjs (pinned in .ci/package.json) and API Gateway's $input,
//     $util and $context; its header lists where it only approximates.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Values the tests substitute for CloudFormation's pseudo parameters.
const (
	testPartition = "aws"
	testRegion    = "us-east-1"
	testAccount   = "123456789012"
	testStack     = "sdsops"
	testStage     = "v1"
)

// stateMachineArn is the ARN the tests give a state machine's Ref.
func stateMachineArn(logicalID string) string {
	return "arn:" + testPartition + ":states:" + testRegion + ":" + testAccount + ":stateMachine:" + testStack + "-" + logicalID
}

// apiRoute is one method of the deployed REST API.
type apiRoute struct {
	key       string // "POST /datasources/{accessId}/{name}/backups"
	op        map[string]any
	action    string // Step Functions action the integration calls
	template  string // application/json request template, Fn::Sub resolved
	responses map[string]string
	model     string // body model, "" when the method has none
	validator map[string]any
}

// apiDefinition returns the routes of the one REST API and its models.
func apiDefinition(t *testing.T) (map[string]*apiRoute, map[string]any) {
	t.Helper()
	_, tp := load(t)
	apis := tp.ofType("AWS::ApiGateway::RestApi")
	if len(apis) != 1 {
		t.Fatalf("the translated template has %d REST APIs; these tests expect exactly one", len(apis))
	}
	var body map[string]any
	for id, api := range apis {
		if body = obj(api.Properties["Body"]); body == nil {
			t.Fatalf("REST API %s has no inline Body", id)
		}
	}
	subs := map[string]string{
		"AWS::Partition": testPartition, "AWS::Region": testRegion,
		"AWS::AccountId": testAccount, "AWS::StackName": testStack,
	}
	for id := range tp.ofType("AWS::StepFunctions::StateMachine") {
		subs[id] = stateMachineArn(id)
		subs[id+".Arn"] = stateMachineArn(id)
		subs[id+".Name"] = testStack + "-" + id
	}
	for id := range tp.ofType("AWS::Lambda::Function") {
		subs[id+".Arn"] = "arn:" + testPartition + ":lambda:" + testRegion + ":" + testAccount + ":function:" + testStack + "-" + id
	}
	validators := obj(body["x-amazon-apigateway-request-validators"])
	defaultValidator := str(body["x-amazon-apigateway-request-validator"])
	routes := map[string]*apiRoute{}
	for path, item := range obj(body["paths"]) {
		for _, m := range httpMethods {
			op := obj(obj(item)[m])
			if op == nil {
				continue
			}
			r := &apiRoute{key: strings.ToUpper(m) + " " + path, op: op, responses: map[string]string{}}
			integ := obj(op["x-amazon-apigateway-integration"])
			if str(integ["type"]) == "aws_proxy" {
				continue // a Lambda proxy route: no mapping templates to run
			}
			uri, err := resolveSub(integ["uri"], subs)
			if err != nil {
				t.Fatalf("%s: integration uri: %v", r.key, err)
			}
			if i := strings.Index(uri, ":states:action/"); i >= 0 {
				r.action = uri[i+len(":states:action/"):]
			}
			if tmpl, ok := obj(integ["requestTemplates"])["application/json"]; ok {
				if r.template, err = resolveSub(tmpl, subs); err != nil {
					t.Fatalf("%s: request template: %v", r.key, err)
				}
			}
			for sel, resp := range obj(integ["responses"]) {
				if tmpl, ok := obj(obj(resp)["responseTemplates"])["application/json"]; ok {
					if r.responses[sel], err = resolveSub(tmpl, subs); err != nil {
						t.Fatalf("%s: response template %s: %v", r.key, sel, err)
					}
				}
			}
			for _, p := range list(op["parameters"]) {
				if str(obj(p)["in"]) == "body" {
					r.model = strings.TrimPrefix(str(obj(obj(p)["schema"])["$ref"]), "#/definitions/")
				}
			}
			name := str(op["x-amazon-apigateway-request-validator"])
			if name == "" {
				name = defaultValidator
			}
			r.validator = obj(validators[name])
			routes[r.key] = r
		}
	}
	return routes, obj(body["definitions"])
}

var subRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// resolveSub evaluates a string or an Fn::Sub (either form) with the given
// variables; ${!Literal} is the literal ${Literal}.
func resolveSub(v any, vars map[string]string) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	sub, ok := obj(v)["Fn::Sub"]
	if !ok || len(obj(v)) != 1 {
		return "", fmt.Errorf("want a string or Fn::Sub, got %v", v)
	}
	text, _ := sub.(string)
	local := map[string]string{}
	if l, ok := sub.([]any); ok && len(l) == 2 {
		text = str(l[0])
		for k, lv := range obj(l[1]) {
			s, err := resolveSub(lv, vars)
			if err != nil {
				return "", fmt.Errorf("Fn::Sub variable %s: %v", k, err)
			}
			local[k] = s
		}
	}
	var missing []string
	out := subRef.ReplaceAllStringFunc(text, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if s, ok := local[name]; ok {
			return s
		}
		if s, ok := vars[name]; ok {
			return s
		}
		missing = append(missing, m)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("Fn::Sub refers to %v, which the tests do not resolve", missing)
	}
	return out, nil
}

// ------------------------------------------------------------ JSON schema

type modelCase struct {
	Model string `json:"model"`
	Body  string `json:"body"`
}

type modelResult struct {
	Valid  bool     `json:"valid"`
	Errors []string `json:"errors"`
}

// validateModels validates each body against its model with a real
// draft-04 validator (python's jsonschema).
func validateModels(t *testing.T, definitions map[string]any, cases []modelCase) []modelResult {
	t.Helper()
	needTool(t, python(), "the JSON schema validator is python's jsonschema, which cfn-lint brings: "+pinnedTools)
	req, err := json.Marshal(map[string]any{"definitions": definitions, "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(exec.Command(python(), filepath.Join("testdata", "validate_models.py")), req)
	if err != nil {
		t.Fatalf("testdata/validate_models.py (jsonschema: %s): %v\n%s", pinnedTools, err, stderr)
	}
	var res []modelResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("testdata/validate_models.py printed %d results for %d cases (%v): %s", len(res), len(cases), err, out)
	}
	return res
}

// --------------------------------------------------------------- Velocity

type vtlCase struct {
	Template string            `json:"template"`
	Path     map[string]string `json:"path,omitempty"`
	Body     string            `json:"body"`
	Context  map[string]any    `json:"context,omitempty"`
}

type vtlResult struct {
	Output           string         `json:"output"`
	Exception        string         `json:"exception"`
	HarnessError     string         `json:"harnessError"`
	ResponseOverride map[string]any `json:"responseOverride"`
}

var (
	velocityOnce sync.Once
	velocityDir  string
	velocityErr  error
)

// needVelocity returns the directory of the velocityjs package pinned in
// .ci/package-lock.json, installing the lock with the same `npm ci --prefix
// .ci` as `make lint` when node_modules lacks it or holds another version.
// Without node or npm it skips, or fails under CI.
func needVelocity(t *testing.T) string {
	t.Helper()
	needTool(t, "node", "install Node.js 20.19 or later with npm: the mapping templates render with velocityjs")
	root := repoRoot(t)
	velocityOnce.Do(func() {
		lockFile := filepath.Join(root, ".ci", "package-lock.json")
		var lock struct {
			Packages map[string]struct {
				Version string `json:"version"`
			} `json:"packages"`
		}
		data, err := os.ReadFile(lockFile)
		if err == nil {
			err = json.Unmarshal(data, &lock)
		}
		if err != nil {
			velocityErr = fmt.Errorf("reading %s: %v", lockFile, err)
			return
		}
		want := lock.Packages["node_modules/velocityjs"].Version
		if want == "" {
			velocityErr = errors.New(".ci/package-lock.json does not pin velocityjs; add it with npm install --prefix .ci --save-dev --save-exact velocityjs@<version>")
			return
		}
		velocityDir = filepath.Join(root, ".ci", "node_modules", "velocityjs")
		installed := func() string {
			var pkg struct {
				Version string `json:"version"`
			}
			data, err := os.ReadFile(filepath.Join(velocityDir, "package.json"))
			if err != nil || json.Unmarshal(data, &pkg) != nil {
				return ""
			}
			return pkg.Version
		}
		if installed() == want {
			return
		}
		if _, err := exec.LookPath("npm"); err != nil {
			velocityErr = fmt.Errorf("velocityjs %s is not installed in .ci/node_modules and npm is missing (install Node.js 20.19 or later with npm)", want)
			return
		}
		cmd := exec.Command("npm", "ci", "--prefix", ".ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			velocityErr = fmt.Errorf("npm ci --prefix .ci: %v\n%s", err, out)
			return
		}
		if got := installed(); got != want {
			velocityErr = fmt.Errorf("after npm ci --prefix .ci, .ci/node_modules has velocityjs %q, the lock pins %q", got, want)
		}
	})
	if velocityErr != nil {
		if !inCI() {
			if _, err := exec.LookPath("npm"); err != nil {
				t.Skip(velocityErr)
			}
		}
		t.Fatal(velocityErr)
	}
	return velocityDir
}

// renderTemplates renders each case with testdata/render_vtl.js. A case
// the harness could not render fails the test: it would prove nothing.
func renderTemplates(t *testing.T, cases []vtlCase) []vtlResult {
	t.Helper()
	dir := needVelocity(t)
	req, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(exec.Command("node", filepath.Join("testdata", "render_vtl.js"), dir), req)
	if err != nil {
		t.Fatalf("testdata/render_vtl.js: %v\n%s", err, stderr)
	}
	var res []vtlResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("testdata/render_vtl.js printed %d results for %d cases (%v): %.500s", len(res), len(cases), err, out)
	}
	return res
}

func run(cmd *exec.Cmd, stdin []byte) (stdout []byte, stderr string, err error) {
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.String(), err
}

// ------------------------------------------------------- request checks

// strictJSON parses one JSON value as an AWS service would have to: valid
// UTF-8, no duplicate keys (a second "input" would be an injection), nothing
// after the value.
func strictJSON(s string) (any, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	v, err := strictValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("text after the JSON value")
	}
	return v, nil
}

func strictValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string)
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("duplicate key %q", key)
			}
			if m[key], err = strictValue(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token()
		return m, err
	case json.Delim('['):
		l := []any{}
		for dec.More() {
			v, err := strictValue(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token()
		return l, err
	}
	return tok, nil
}

// validExecutionName applies Step Functions' rules for execution names:
// 1-80 characters; no whitespace, brackets, wildcards, the characters
// "#%\^|~`$&,;:/ or control characters (U+0000-001F, U+007F-009F).
func validExecutionName(s string) bool {
	if n := utf8.RuneCountInString(s); n < 1 || n > 80 {
		return false
	}
	for _, r := range s {
		switch {
		case r <= 0x20, r >= 0x7f && r <= 0x9f, r == 0x85, r == 0xa0, r == 0x1680,
			r >= 0x2000 && r <= 0x200a, r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
			return false
		case strings.ContainsRune("<>{}[]?*\"#%\\^|~`$&,;:/", r):
			return false
		}
	}
	return true
}

// startOutcome is what a rendered StartExecution request would do.
type startOutcome struct {
	refused     bool           // Step Functions must refuse it: nothing starts
	input       map[string]any // the execution input, when it would start
	arn         string
	refusalName string
	problem     string // not a well-formed request: the test fails
}

// startExecution reads a rendered StartExecution request for a state
// machine with ARN wantArn.
func startExecution(r vtlResult, wantArn string) startOutcome {
	if r.Exception != "" {
		// API Gateway answers 500 and calls no integration.
		return startOutcome{refused: true}
	}
	v, err := strictJSON(r.Output)
	if err != nil {
		return startOutcome{problem: fmt.Sprintf("the rendered StartExecution request is not valid JSON (%v): %s", err, printable(r.Output))}
	}
	req, ok := v.(map[string]any)
	if !ok {
		return startOutcome{problem: "the rendered StartExecution request is not a JSON object: " + printable(r.Output)}
	}
	for k := range req {
		if k != "stateMachineArn" && k != "name" && k != "input" && k != "traceHeader" {
			return startOutcome{problem: fmt.Sprintf("the rendered StartExecution request has a field %q: %s", k, printable(r.Output))}
		}
	}
	o := startOutcome{arn: str(req["stateMachineArn"])}
	if o.arn != wantArn {
		return startOutcome{problem: fmt.Sprintf("stateMachineArn is %q, want %q: %s", o.arn, wantArn, printable(r.Output))}
	}
	if name, has := req["name"]; has {
		if s, ok := name.(string); !ok || !validExecutionName(s) {
			// StartExecution fails with InvalidName: nothing starts.
			if req["input"] != "{}" {
				return startOutcome{problem: fmt.Sprintf("a refused request must carry input \"{}\", not request data: %s", printable(r.Output))}
			}
			return startOutcome{refused: true, arn: o.arn, refusalName: fmt.Sprint(name)}
		}
	}
	in, ok := req["input"].(string)
	if !ok {
		return startOutcome{problem: "the rendered StartExecution request has no input string: " + printable(r.Output)}
	}
	iv, err := strictJSON(in)
	if err != nil {
		return startOutcome{problem: fmt.Sprintf("the execution input is not valid JSON (%v): %s", err, printable(in))}
	}
	if o.input, ok = iv.(map[string]any); !ok {
		return startOutcome{problem: "the execution input is not a JSON object: " + printable(in)}
	}
	return o
}

// sameJSON compares two JSON-like values, numbers by their text.
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		data, _ := json.Marshal(v)
		var out any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		_ = dec.Decode(&out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func compactJSON(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// percentDecode decodes %XX escapes as a server decoding a path segment
// would: bytes read as UTF-8 (U+FFFD for malformed sequences), a % not
// followed by two hex digits left as it is, + left as it is.
func percentDecode(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// shown quotes a value for a message; a long one keeps its head and tail.
func shown(s string) string {
	if len(s) > 90 {
		return fmt.Sprintf("%q...%q (%d bytes)", s[:40], s[len(s)-30:], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// printable shows rendered output with control characters escaped.
func printable(s string) string {
	return controlReplacer.Replace(s)
}

var controlReplacer = strings.NewReplacer(controlEscapes()...)

func controlEscapes() []string {
	var pairs []string
	for r := rune(0); r <= 0x9f; r++ {
		if r < 0x20 && r != '\n' || r >= 0x7f {
			pairs = append(pairs, string(r), fmt.Sprintf("\\x%02x", r))
		}
	}
	return pairs
}

func sortedRouteKeys(m map[string]*apiRoute) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
