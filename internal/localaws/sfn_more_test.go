package localaws

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestStepFunctionsErrors: uncaught handler errors fail the execution with the errorType
// as Error; States.TaskFailed and States.ALL match handler errorTypes; a crashing
// function fails with Runtime.ExitError.
func TestStepFunctionsErrors(t *testing.T) {
	st := sharedStack(t)
	if err := st.Lambda.RegisterBinary("echo", BinaryFunction{Path: echoBin}); err != nil {
		t.Fatal(err)
	}
	cfg, err := st.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := sfn.NewFromConfig(cfg)
	arn := st.Lambda.FunctionARN("echo")

	for _, style := range taskStyles {
		t.Run(style.name, func(t *testing.T) {
			fail := style.task(arn, map[string]any{"action": "error", "errorType": "SdsFatal", "message": "bad archive"})
			fail["End"] = true
			d := runExecution(t, client, createStateMachine(t, client, "uncaught-"+style.name,
				mustJSON(map[string]any{"StartAt": "Fail", "States": map[string]any{"Fail": fail}})), "", "{}")
			var cause errorDoc
			_ = json.Unmarshal([]byte(aws.ToString(d.Cause)), &cause)
			if d.Status != types.ExecutionStatusFailed || aws.ToString(d.Error) != "SdsFatal" || cause.ErrorMessage != "bad archive" {
				t.Errorf("uncaught: %s error %q cause %q", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
			}

			crash := style.task(arn, map[string]any{"action": "crash", "code": 3})
			crash["End"] = true
			d = runExecution(t, client, createStateMachine(t, client, "crash-"+style.name,
				mustJSON(map[string]any{"StartAt": "Crash", "States": map[string]any{"Crash": crash}})), "", "{}")
			if d.Status != types.ExecutionStatusFailed || aws.ToString(d.Error) != "Runtime.ExitError" {
				t.Errorf("crash: %s error %q cause %q", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
			}

			for _, matcher := range []string{"States.TaskFailed", "States.ALL"} {
				task := style.task(arn, map[string]any{"action": "error", "errorType": "SdsFatal", "message": "bad archive"})
				task["Catch"] = []any{map[string]any{"ErrorEquals": []string{matcher}, "ResultPath": "$.caught", "Next": "Done"}}
				task["Next"] = "Done"
				def := mustJSON(map[string]any{"StartAt": "Task", "States": map[string]any{
					"Task": task, "Done": map[string]any{"Type": "Pass", "End": true},
				}})
				name := "catch-" + strings.ReplaceAll(matcher, ".", "-") + "-" + style.name
				d := runExecution(t, client, createStateMachine(t, client, name, def), "", "{}")
				var out struct {
					Caught struct{ Error string } `json:"caught"`
				}
				_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
				if d.Status != types.ExecutionStatusSucceeded || out.Caught.Error != "SdsFatal" {
					t.Errorf("catch %s: %s output %s", matcher, d.Status, aws.ToString(d.Output))
				}
			}
		})
	}
}

// TestStepFunctionsMap: a Map state invokes the function in parallel; each iteration gets
// its own process up to the function's cap.
func TestStepFunctionsMap(t *testing.T) {
	st := sharedStack(t)
	if err := st.Lambda.RegisterBinary("mapfn", BinaryFunction{Path: echoBin, MaxInstances: 4}); err != nil {
		t.Fatal(err)
	}
	cfg, err := st.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := sfn.NewFromConfig(cfg)
	task := taskStyles[1].task(st.Lambda.FunctionARN("mapfn"), map[string]any{"action": "sleep", "ms": 300, "item.$": "$"})
	task["End"] = true
	def := mustJSON(map[string]any{"StartAt": "Each", "States": map[string]any{
		"Each": map[string]any{
			"Type": "Map", "ItemsPath": "$.items", "End": true,
			"ItemProcessor": map[string]any{"StartAt": "Call", "States": map[string]any{"Call": task}},
		},
	}})
	start := time.Now()
	d := runExecution(t, client, createStateMachine(t, client, "map", def), "", `{"items":[1,2,3,4,5,6,7,8]}`)
	elapsed := time.Since(start)
	if d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("map: %s %s %s", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
	}
	var out []struct {
		Echo struct{ Item int } `json:"echo"`
		PID  int                `json:"pid"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil || len(out) != 8 {
		t.Fatalf("map output %s: %v", aws.ToString(d.Output), err)
	}
	pids := map[int]bool{}
	for i, o := range out {
		pids[o.PID] = true
		if o.Echo.Item != i+1 {
			t.Errorf("item %d: %+v", i, o)
		}
	}
	if len(pids) < 2 {
		t.Errorf("Map iterations ran on %d process(es), want parallel invocations", len(pids))
	}
	t.Logf("Map of 8 × 300 ms: %s on %d processes", elapsed, len(pids))
}

// TestStepFunctionsSDKIntegration: aws-sdk integrations reach moto through the endpoint.
func TestStepFunctionsSDKIntegration(t *testing.T) {
	st := sharedStack(t)
	cfg, err := st.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	secret := uniqueName("sdsops/sfn-test")
	if _, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String(secret), SecretString: aws.String("s3cr3t"),
	}); err != nil {
		t.Fatal(err)
	}
	client := sfn.NewFromConfig(cfg)
	def := mustJSON(map[string]any{"StartAt": "Get", "States": map[string]any{
		"Get": map[string]any{
			"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:secretsmanager:describeSecret",
			"Parameters":     map[string]any{"SecretId": secret},
			"ResultSelector": map[string]any{"name.$": "$.Name"},
			"End":            true,
		},
	}})
	d := runExecution(t, client, createStateMachine(t, client, "sdk", def), "", "{}")
	var out struct{ Name string }
	_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &out)
	if d.Status != types.ExecutionStatusSucceeded || out.Name != secret {
		t.Errorf("aws-sdk task: %s output %s error %s %s", d.Status, aws.ToString(d.Output), aws.ToString(d.Error), aws.ToString(d.Cause))
	}
}

// TestStepFunctionsNested: a nested execution (startExecution.sync:2) runs the child and
// returns its description in ASL's PascalCase with the output parsed; a failed child fails
// the task with States.TaskFailed and the child's description, as JSON, in the cause.
func TestStepFunctionsNested(t *testing.T) {
	st := sharedStack(t)
	cfg, err := st.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := sfn.NewFromConfig(cfg)
	ok := createStateMachine(t, client, "child-ok", mustJSON(map[string]any{"StartAt": "Echo", "States": map[string]any{
		"Echo": map[string]any{"Type": "Pass", "Parameters": map[string]any{"got.$": "$.v"}, "End": true},
	}}))
	failing := createStateMachine(t, client, "child-fail", mustJSON(map[string]any{"StartAt": "Fail", "States": map[string]any{
		"Fail": map[string]any{"Type": "Fail", "Error": "SdsNotFound", "Cause": "no such data source"},
	}}))
	parent := createStateMachine(t, client, "parent", mustJSON(map[string]any{"StartAt": "Child", "States": map[string]any{
		"Child": map[string]any{
			"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
			"Parameters": map[string]any{
				"StateMachineArn.$": "$.machine",
				"Name.$":            "$.name",
				"Input":             map[string]any{"v.$": "$.v"},
			},
			"Catch": []any{map[string]any{"ErrorEquals": []string{"States.TaskFailed"}, "ResultPath": "$.failure", "Next": "Failed"}},
			"End":   true,
		},
		"Failed": map[string]any{"Type": "Pass", "End": true},
	}}))

	name := uniqueName("child")
	d := runExecution(t, client, parent, "", mustJSON(map[string]any{"machine": ok, "name": name, "v": 42}))
	var out struct {
		ExecutionArn, Status string
		Output               struct{ Got int }
		StartDate, StopDate  int64
	}
	if err := json.Unmarshal([]byte(aws.ToString(d.Output)), &out); err != nil || d.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("parent: %s %s %s %s (%v)", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause), aws.ToString(d.Output), err)
	}
	if out.Status != "SUCCEEDED" || out.Output.Got != 42 || !strings.HasSuffix(out.ExecutionArn, ":"+name) || out.StopDate < out.StartDate || out.StartDate < 1e12 {
		t.Errorf("child result %s: want Status SUCCEEDED, Output {got: 42}, the child's ARN and epoch-millisecond dates", aws.ToString(d.Output))
	}

	d = runExecution(t, client, parent, "", mustJSON(map[string]any{"machine": failing, "name": uniqueName("child"), "v": 1}))
	var failed struct {
		Failure struct{ Error, Cause string }
	}
	_ = json.Unmarshal([]byte(aws.ToString(d.Output)), &failed)
	var child struct{ Status, Error, Cause string }
	if err := json.Unmarshal([]byte(failed.Failure.Cause), &child); err != nil || failed.Failure.Error != "States.TaskFailed" {
		t.Fatalf("failed child: parent output %s (%v), want States.TaskFailed with a JSON cause", aws.ToString(d.Output), err)
	}
	if child.Status != "FAILED" || child.Error != "SdsNotFound" || child.Cause != "no such data source" {
		t.Errorf("failed child described as %+v", child)
	}
}
