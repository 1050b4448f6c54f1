package templatecheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// executionFailureMetrics are the AWS/States metrics of executions that
// ended without success: an alarm on a state machine must count them all.
var executionFailureMetrics = []string{"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}

// runbookSection is the README section every alarm sends the reader to.
const runbookSection = "Runbook"

// runbookLink reports whether an alarm description points to the alarm's
// own entry of the README's runbook, so a mail at 3 a.m. leads straight to
// what to do (TestReadmeLinksResolve checks the entry exists).
func runbookLink(desc, alarmID string) bool {
	return strings.Contains(desc, "README.md#"+strings.ToLower(alarmID))
}

// stateMachineAlarms maps each alarm on AWS/States metrics to the one state
// machine (logical id) its metrics are about.
func stateMachineAlarms(t *testing.T, tp Template) map[string]string {
	t.Helper()
	out := map[string]string{}
	for id, a := range tp.ofType("AWS::CloudWatch::Alarm") {
		machines := map[string]bool{}
		for _, m := range list(a.Properties["Metrics"]) {
			metric := obj(obj(obj(m)["MetricStat"])["Metric"])
			if str(metric["Namespace"]) != "AWS/States" {
				continue
			}
			for _, d := range list(metric["Dimensions"]) {
				if str(obj(d)["Name"]) == "StateMachineArn" {
					machines[str(obj(obj(d)["Value"])["Ref"])] = true
				}
			}
		}
		switch len(machines) {
		case 0:
		case 1:
			for sm := range machines {
				out[id] = sm
			}
		default:
			t.Errorf("alarm %s watches several state machines %v; one alarm per state machine says which one failed", id, sortedKeys(machines))
		}
	}
	return out
}

// TestEveryStateMachineHasAFailureAlarm: a failed, timed-out or aborted
// execution of any state machine notifies the alarm topic, with a
// description that names the workflow, says what to do and links to the
// runbook.
func TestEveryStateMachineHasAFailureAlarm(t *testing.T) {
	_, tp := load(t)
	sms := tp.ofType("AWS::StepFunctions::StateMachine")
	if len(sms) == 0 {
		t.Fatal("the translated template has no state machines")
	}
	readme, err := os.ReadFile(filepath.Join(tpl.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^#+ ` + regexp.QuoteMeta(runbookSection) + `\s*$`).Match(readme) {
		t.Fatalf("README.md has no section %q, which the alarm descriptions point to", runbookSection)
	}
	alarms := stateMachineAlarms(t, tp)
	for _, sm := range sortedKeys(sms) {
		t.Run(sm, func(t *testing.T) {
			var found []string
			for id, watched := range alarms {
				if watched == sm {
					found = append(found, id)
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d alarms watch %s (%v); want exactly one failure alarm", len(found), sm, found)
			}
			a := tp.Resources[found[0]].Properties
			counted := map[string]bool{}
			var expr string
			for _, m := range list(a["Metrics"]) {
				if e := str(obj(m)["Expression"]); e != "" && obj(m)["ReturnData"] == true {
					expr = e
				}
				if ms := obj(obj(m)["MetricStat"]); ms != nil && obj(m)["ReturnData"] == false {
					counted[str(obj(ms["Metric"])["MetricName"])+"="+str(obj(m)["Id"])] = true
				}
			}
			for _, want := range executionFailureMetrics {
				ok := false
				for c := range counted {
					name, metricID, _ := strings.Cut(c, "=")
					ok = ok || (name == want && strings.Contains(expr, metricID))
				}
				if !ok {
					t.Errorf("alarm %s does not count %s in its expression %q", found[0], want, expr)
				}
			}
			if !slices.ContainsFunc(list(a["AlarmActions"]), func(v any) bool { return str(obj(v)["Ref"]) == "AlarmTopic" }) {
				t.Errorf("alarm %s does not notify AlarmTopic: %v", found[0], a["AlarmActions"])
			}
			desc, err := resolveSub(a["AlarmDescription"], map[string]string{"AWS::StackName": testStack})
			if err != nil {
				t.Fatalf("alarm %s: AlarmDescription: %v", found[0], err)
			}
			name := machineName(t, tpl.source.Resources[sm])
			if !strings.Contains(desc, name) {
				t.Errorf("alarm %s: description %q does not name the %s state machine", found[0], desc, name)
			}
			if !runbookLink(desc, found[0]) {
				t.Errorf("alarm %s: description %q does not point to its runbook entry (README.md#%s)", found[0], desc, strings.ToLower(found[0]))
			}
			if !strings.Contains(strings.ToLower(desc), "to do") {
				t.Errorf("alarm %s: description %q does not say what to do", found[0], desc)
			}
		})
	}
}

// machineName is a state machine's short name: its definition file's, the
// one the README, make up (SM_<NAME>) and the logs use.
func machineName(t *testing.T, sm Resource) string {
	t.Helper()
	uri := str(sm.Properties["DefinitionUri"])
	if uri == "" {
		t.Fatalf("state machine without a local DefinitionUri: %v", sm.Properties)
	}
	return strings.TrimSuffix(filepath.Base(uri), ".asl.json")
}

// TestRepeatedBlocksHaveOneShape: the failure alarms and the log groups are
// written out once per state machine or function (CloudFormation has no
// loop that every tool here reads: see the note in template.yaml). This
// keeps the copies identical but for what names their subject, so a fix to
// one cannot be forgotten in the others.
func TestRepeatedBlocksHaveOneShape(t *testing.T) {
	src, _ := load(t)
	sms := src.ofType("AWS::Serverless::StateMachine")
	fns := src.ofType("AWS::Serverless::Function")

	t.Run("alarms", func(t *testing.T) {
		alarms := stateMachineAlarms(t, src)
		shapes := map[string][]string{}
		for id, sm := range alarms {
			p := clone(t, src.Resources[id].Properties)
			delete(p, "AlarmDescription") // checked by TestEveryStateMachineHasAFailureAlarm
			shape := canonical(t, replaceRef(p, sm, "<StateMachine>"))
			shapes[shape] = append(shapes[shape], id)
			if want := strings.TrimSuffix(sm, "StateMachine") + "FailedAlarm"; id != want {
				t.Errorf("alarm %s watches %s; name it %s", id, sm, want)
			}
		}
		if len(alarms) != len(sms) {
			t.Errorf("%d state machine alarms for %d state machines", len(alarms), len(sms))
		}
		oneShape(t, shapes)
	})

	t.Run("log groups", func(t *testing.T) {
		shapes := map[string][]string{}
		used := map[string]string{}
		check := func(owner, group, name string, want func(string) string) {
			lg, ok := src.Resources[group]
			if !ok || lg.Type != "AWS::Logs::LogGroup" {
				t.Errorf("%s logs to %q, which is not an AWS::Logs::LogGroup of the template", owner, group)
				return
			}
			used[group] = owner
			p := clone(t, lg.Properties)
			gotName, err := resolveSub(p["LogGroupName"], map[string]string{"AWS::StackName": testStack})
			if err != nil || gotName != want(name) {
				t.Errorf("log group %s of %s is named %q (%v); want %q", group, owner, gotName, err, want(name))
			}
			delete(p, "LogGroupName")
			shape := canonical(t, p)
			shapes[shape] = append(shapes[shape], group)
		}
		for id, fn := range fns {
			group := str(obj(obj(fn.Properties["LoggingConfig"])["LogGroup"])["Ref"])
			stem, _ := strings.CutSuffix(id, "Function")
			check(id, group, strings.ToLower(stem), func(n string) string { return "/aws/lambda/" + testStack + "/" + n })
		}
		for id, sm := range sms {
			var group string
			for _, d := range list(obj(sm.Properties["Logging"])["Destinations"]) {
				group = getAtt(obj(obj(d)["CloudWatchLogsLogGroup"])["LogGroupArn"])[0]
			}
			check(id, group, machineName(t, sm), func(n string) string { return "/aws/vendedlogs/states/" + testStack + "-" + n })
		}
		// The Query API's HTTP API writes access logs to a group of its own
		// (their format is checked in queryapi_test.go).
		apis := 0
		for id, api := range src.ofType("AWS::Serverless::HttpApi") {
			if g := getAtt(obj(api.Properties["AccessLogSettings"])["DestinationArn"]); len(g) == 2 {
				used[g[0]] = id
				apis++
			}
		}
		for id := range src.ofType("AWS::Logs::LogGroup") {
			if used[id] == "" {
				t.Errorf("log group %s belongs to no function or state machine", id)
			}
		}
		if len(used) != len(fns)+len(sms)+apis {
			t.Errorf("%d log groups for %d functions, %d state machines and %d access logs; want one each", len(used), len(fns), len(sms), apis)
		}
		oneShape(t, shapes)
	})
}

func oneShape(t *testing.T, shapes map[string][]string) {
	t.Helper()
	if len(shapes) <= 1 {
		return
	}
	var desc []string
	for shape, ids := range shapes {
		slices.Sort(ids)
		desc = append(desc, strings.Join(ids, ", ")+":\n    "+shape)
	}
	slices.Sort(desc)
	t.Errorf("the copies differ in more than their subject:\n  %s", strings.Join(desc, "\n  "))
}

func clone(t *testing.T, p map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	b, err := json.Marshal(p)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v) // map keys sorted
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replaceRef returns v with every {"Ref": from} replaced by {"Ref": to}.
func replaceRef(v any, from, to string) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 && str(x["Ref"]) == from {
			return map[string]any{"Ref": to}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = replaceRef(e, from, to)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = replaceRef(e, from, to)
		}
		return out
	}
	return v
}
