package templatecheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// taskErrorTypes are the Lambda errorTypes of the functions: the string
// constants of internal/task's block documented as "Error types".
func taskErrorTypes(t *testing.T) []string {
	t.Helper()
	file := filepath.Join(repoRoot(t), "internal", "task", "errors.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST || g.Doc == nil || !strings.HasPrefix(g.Doc.Text(), "Error types") {
			continue
		}
		for _, spec := range g.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no const block documented as \"Error types\"", file)
	}
	return out
}

// machineErrors are the errors the state machines end with that no
// function raises: each Fail state's Error, and the errors a Pass state
// writes into a failure ("Error":"BackupStopped" in a States.JsonMerge).
func machineErrors(t *testing.T) map[string]string {
	t.Helper()
	inString := regexp.MustCompile(`\\"Error\\"\s*:\s*\\"([A-Za-z.]+)\\"`)
	out := map[string]string{}
	for _, f := range aslFiles(t) {
		eachState(f.def, func(_ string, st map[string]any) {
			if str(st["Type"]) == "Fail" && str(st["Error"]) != "" {
				out[str(st["Error"])] = f.name
			}
		})
		for _, m := range inString.FindAllSubmatch(f.raw, -1) {
			out[string(m[1])] = f.name
		}
	}
	return out
}

// runbookEntries are the ### headings under README's Runbook.
func runbookEntries(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^### (.+?)\s*$`).FindAllStringSubmatch(readmeSection(t, "Runbook"), -1) {
		out[m[1]] = true
	}
	return out
}

// TestRunbookCoversEveryErrorAndAlarm: every errorType of the functions,
// every error a state machine ends with and every alarm of the template
// has its "### <name>" entry in README's Runbook, and every alarm's
// description says what to do and links into the runbook.
func TestRunbookCoversEveryErrorAndAlarm(t *testing.T) {
	src, _ := load(t)
	entries := runbookEntries(t)
	want := map[string]string{}
	for _, e := range taskErrorTypes(t) {
		want[e] = "internal/task/errors.go"
	}
	for e, file := range machineErrors(t) {
		if _, ok := want[e]; !ok {
			want[e] = "statemachine/" + file
		}
	}
	alarms := src.ofType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("template.yaml has no alarms")
	}
	// Descriptions may name parameters: they read with their defaults.
	vars := map[string]string{"AWS::StackName": testStack}
	for name, p := range src.Parameters {
		vars[name] = fmt.Sprint(p["Default"])
	}
	for id, a := range alarms {
		want[id] = "template.yaml"
		desc, err := resolveSub(a.Properties["AlarmDescription"], vars)
		if err != nil {
			t.Errorf("alarm %s: AlarmDescription: %v", id, err)
			continue
		}
		if !runbookLink(desc, id) {
			t.Errorf("alarm %s: description %q does not link to its entry, README.md#%s", id, desc, strings.ToLower(id))
		}
		if !strings.Contains(strings.ToLower(desc), "to do") {
			t.Errorf("alarm %s: description %q does not say what to do", id, desc)
		}
	}
	for _, name := range sortedKeys(want) {
		if !entries[name] {
			t.Errorf("%s (from %s) has no \"### %s\" entry in README's Runbook", name, want[name], name)
		}
	}
}
