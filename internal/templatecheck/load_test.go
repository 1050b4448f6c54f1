// Package templatecheck checks the security properties of template.yaml: IAM
// statements, the archive bucket, API authentication, state machine logging,
// build metadata and the state machine definitions it points to.
//
// The module has no YAML library, and the template uses CloudFormation's
// short tags (!Sub, !GetAtt, ...). The tests therefore let Python read it
// with cfn-lint's decoder and expand it with the SAM translator
// (aws-sam-translator, pinned beside cfn-lint in requirements-dev.txt), and
// check the JSON in Go. Checks on IAM, the API and the
// state machines run on the translated template: that is what CloudFormation
// deploys, including the roles and policies SAM generates.
package templatecheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// translateScript prints {"source": <template as JSON>, "transformed":
// <template after the SAM transform>}. It calls the SAM translator directly
// rather than through cfn-lint's wrapper, because that wrapper blanks an
// Api's DefinitionBody when Auth is set (so its authentication could not be
// checked), and it keeps SAM's own validation on. Local paths are replaced
// by S3 URIs the way `sam package` would, and AWS::Include snippets (the API's
// OpenAPI body) are inserted the way CloudFormation does before the SAM
// transform.
const translateScript = `
import copy, json, os, sys
from cfnlint.decode import decode
from samtranslator.translator.translator import Translator
from samtranslator.parser import parser

tpl, matches = decode(sys.argv[1])
if matches:
    sys.exit("reading the template: " + "; ".join(str(m) for m in matches))
src = json.loads(json.dumps(tpl))

# CloudFormation runs the AWS::Include transforms (innermost macros first)
# before AWS::Serverless, so SAM sees the included snippet inline; a local
# Location is what sam deploy uploads, relative to the template.
def include(node):
    if isinstance(node, list):
        return [include(v) for v in node]
    if not isinstance(node, dict):
        return node
    t = node.get("Fn::Transform")
    if len(node) == 1 and isinstance(t, dict) and t.get("Name") == "AWS::Include":
        loc = (t.get("Parameters") or {}).get("Location")
        if not isinstance(loc, str) or "://" in loc:
            sys.exit("AWS::Include Location %r: want a path in the repository" % (loc,))
        snippet, matches = decode(os.path.join(os.path.dirname(sys.argv[1]), loc))
        if matches:
            sys.exit("reading " + loc + ": " + "; ".join(str(m) for m in matches))
        return include(json.loads(json.dumps(snippet)))
    return {k: include(v) for k, v in node.items()}
src = include(src)
sam = copy.deepcopy(src)
for r in sam.get("Resources", {}).values():
    p = r.get("Properties") or {}
    if r.get("Type") == "AWS::Serverless::Function" and isinstance(p.get("CodeUri"), str):
        p["CodeUri"] = "s3://bucket/function.zip"
    if r.get("Type") == "AWS::Serverless::StateMachine" and isinstance(p.get("DefinitionUri"), str):
        p["DefinitionUri"] = "s3://bucket/" + p["DefinitionUri"]
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
# No policy map: the translator resolves AWS managed policy names from the copy it bundles.
translator = Translator(managed_policy_map=None, sam_parser=parser.Parser())
out = translator.translate(sam_template=sam, parameter_values={}, passthrough_metadata=True)
json.dump({"source": src, "transformed": out}, sys.stdout, default=str)
`

// Template is a CloudFormation template as generic JSON.
type Template struct {
	Globals    map[string]any            `json:"Globals"`
	Parameters map[string]map[string]any `json:"Parameters"`
	Rules      map[string]Rule           `json:"Rules"`
	Resources  map[string]Resource       `json:"Resources"`
}

// Rule is one of a Template's Rules: CloudFormation refuses the
// parameters when its RuleCondition holds and an assertion does not.
type Rule struct {
	RuleCondition any `json:"RuleCondition"`
	Assertions    []struct {
		Assert            any    `json:"Assert"`
		AssertDescription string `json:"AssertDescription"`
	} `json:"Assertions"`
}

// Resource is one resource of a Template.
type Resource struct {
	Type                string         `json:"Type"`
	Condition           string         `json:"Condition"`
	DeletionPolicy      string         `json:"DeletionPolicy"`
	UpdateReplacePolicy string         `json:"UpdateReplacePolicy"`
	Metadata            map[string]any `json:"Metadata"`
	Properties          map[string]any `json:"Properties"`
}

type loaded struct {
	root        string
	source      Template
	transformed Template
	err         error
}

var (
	loadOnce sync.Once
	tpl      loaded
)

// inCI reports whether the tests run under CI, where missing tools are
// failures rather than reasons to skip.
func inCI() bool { return os.Getenv("CI") != "" }

// pinnedTools says where the Python tools these tests run come from.
const pinnedTools = "make test uses them at the versions pinned in requirements-dev.txt, installing them into .venv when missing; or: pip install -r requirements-dev.txt"

// python is the interpreter with the pinned tools: $SDSOPS_PYTHON (the
// Makefile sets it), else python3 from PATH.
func python() string {
	if p := os.Getenv("SDSOPS_PYTHON"); p != "" {
		return p
	}
	return "python3"
}

// needTool fails when a command is not installed: a check that did not run
// must not pass.
func needTool(t *testing.T, name, hint string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed (%s)", name, hint)
	}
}

// repoRoot is the directory holding go.mod and template.yaml.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "template.yaml"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("repository root %s: %v", root, err)
		}
	}
	return root
}

// load returns the template as written and as translated by SAM.
func load(t *testing.T) (source, transformed Template) {
	t.Helper()
	needTool(t, python(), "cfn-lint and aws-sam-translator read the template: "+pinnedTools)
	root := repoRoot(t)
	loadOnce.Do(func() {
		tpl.root = root
		cmd := exec.Command(python(), "-c", translateScript, filepath.Join(root, "template.yaml"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			tpl.err = errors.New("translating template.yaml with cfn-lint's decoder and the SAM translator (" + pinnedTools + "): " + err.Error() + "\n" + stderr.String())
			return
		}
		var both struct {
			Source      Template `json:"source"`
			Transformed Template `json:"transformed"`
		}
		if err := json.Unmarshal(out, &both); err != nil {
			tpl.err = errors.New("decoding the translated template: " + err.Error())
			return
		}
		tpl.source, tpl.transformed = both.Source, both.Transformed
	})
	if tpl.err != nil {
		t.Fatal(tpl.err)
	}
	return tpl.source, tpl.transformed
}

// ofType returns the logical ids and resources of one type.
func (tp Template) ofType(typ string) map[string]Resource {
	m := map[string]Resource{}
	for id, r := range tp.Resources {
		if r.Type == typ {
			m[id] = r
		}
	}
	return m
}

// branches expands CloudFormation's Fn::If into its possible values, and
// drops Ref AWS::NoValue, so that a check sees every statement that can be
// deployed under some set of parameters.
func branches(v any) []any {
	m, ok := v.(map[string]any)
	if !ok {
		return []any{v}
	}
	if ref, ok := m["Ref"].(string); ok && len(m) == 1 && ref == "AWS::NoValue" {
		return nil
	}
	if args, ok := m["Fn::If"].([]any); ok && len(m) == 1 && len(args) == 3 {
		return append(branches(args[1]), branches(args[2])...)
	}
	return []any{v}
}

// list returns v as a list (a single value becomes a list of one), with
// Fn::If expanded.
func list(v any) []any {
	var out []any
	for _, b := range branches(v) {
		if l, ok := b.([]any); ok {
			for _, e := range l {
				out = append(out, branches(e)...)
			}
		} else if b != nil {
			out = append(out, b)
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
