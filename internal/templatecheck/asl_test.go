package templatecheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRetryPoliciesAgree: ASL has no includes, so every Task state that calls
// a function carries its own copy of the retry policy. A retrier for the same
// errors must be the same policy wherever it appears, and every function call
// retries Lambda's own faults.
func TestRetryPoliciesAgree(t *testing.T) {
	policies := map[string]map[string][]string{} // errors → retrier JSON → where
	calls := 0
	for _, f := range aslFiles(t) {
		eachTask(f.def, func(name string, state map[string]any) {
			where := f.name + " " + name
			lambdaFaults := false
			for _, r := range list(state["Retry"]) {
				var errs []string
				for _, e := range list(obj(r)["ErrorEquals"]) {
					errs = append(errs, str(e))
				}
				lambdaFaults = lambdaFaults || slices.Contains(errs, "Lambda.ServiceException")
				slices.Sort(errs)
				key := strings.Join(errs, ",")
				policy, _ := json.Marshal(r) // map keys sorted: a canonical form
				if policies[key] == nil {
					policies[key] = map[string][]string{}
				}
				policies[key][string(policy)] = append(policies[key][string(policy)], where)
			}
			if placeholder.MatchString(str(state["Resource"])) && strings.HasSuffix(str(state["Resource"]), "FunctionArn}") {
				calls++
				if !lambdaFaults {
					t.Errorf("%s calls a function without retrying Lambda's faults (Lambda.ServiceException ...)", where)
				}
			}
		})
	}
	if calls == 0 {
		t.Fatal("no Task state calls a function; the check would prove nothing")
	}
	for errs, variants := range policies {
		if len(variants) > 1 {
			var desc []string
			for p, where := range variants {
				desc = append(desc, fmt.Sprintf("%s in %s", p, strings.Join(where, ", ")))
			}
			slices.Sort(desc)
			t.Errorf("retriers for %s differ:\n  %s", errs, strings.Join(desc, "\n  "))
		}
	}
}

// eachTask calls fn for every Task state of a definition, inside Parallel
// branches and Map item processors too.
func eachTask(def map[string]any, fn func(name string, state map[string]any)) {
	eachState(def, func(name string, state map[string]any) {
		if str(state["Type"]) == "Task" {
			fn(name, state)
		}
	})
}

// eachState calls fn for every state of a definition, those of Parallel
// branches and Map processors included.
func eachState(def map[string]any, fn func(name string, state map[string]any)) {
	for name, s := range obj(def["States"]) {
		state := obj(s)
		fn(name, state)
		for _, b := range list(state["Branches"]) {
			eachState(obj(b), fn)
		}
		for _, k := range []string{"ItemProcessor", "Iterator"} {
			if p := obj(state[k]); p != nil {
				eachState(p, fn)
			}
		}
	}
}

// aslFile is one state machine definition, statemachine/<name>.
type aslFile struct {
	name string
	raw  []byte
	def  map[string]any
}

// aslFiles reads and decodes statemachine/*.asl.json.
func aslFiles(t *testing.T) []aslFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "statemachine", "*.asl.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no statemachine/*.asl.json: %v", err)
	}
	var out []aslFile
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var def map[string]any
		if err := json.Unmarshal(b, &def); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, aslFile{name: filepath.Base(f), raw: b, def: def})
	}
	return out
}
