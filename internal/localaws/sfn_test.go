package localaws

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

const sfnRole = "arn:aws:iam::123456789012:role/sfn"

// task returns a Task state invoking the echo function with payload, either through the
// lambda:invoke service integration or with the function ARN as Resource.
type taskStyle struct {
	name string
	task func(arn string, payload map[string]any) map[string]any
	// payloadOf extracts the function result from the state's result.
	payloadOf func(result json.RawMessage) (json.RawMessage, error)
}

var taskStyles = []taskStyle{
	{
		name: "lambda-invoke",
		task: func(arn string, payload map[string]any) map[string]any {
			return map[string]any{
				"Type":       "Task",
				"Resource":   "arn:aws:states:::lambda:invoke",
				"Parameters": map[string]any{"FunctionName": arn, "Payload": payload},
			}
		},
		payloadOf: func(r json.RawMessage) (json.RawMessage, error) {
			var out struct{ Payload json.RawMessage }
			err := json.Unmarshal(r, &out)
			return out.Payload, err
		},
	},
	{
		name: "function-arn",
		task: func(arn string, payload map[string]any) map[string]any {
			return map[string]any{"Type": "Task", "Resource": arn, "Parameters": payload}
		},
		payloadOf: func(r json.RawMessage) (json.RawMessage, error) { return r, nil },
	},
}

// pipeline: echo → Wait 30 s → a task failing with SdsTransient, retried twice (after a
// non-matching retrier) and then caught.
func pipeline(style taskStyle, arn string) string {
	first := style.task(arn, map[string]any{"action": "echo", "step": "first", "input.$": "$"})
	first["ResultPath"] = "$.first"
	first["Next"] = "Wait"
	flaky := style.task(arn, map[string]any{"action": "error", "errorType": "SdsTransient", "message": "try again"})
	flaky["Retry"] = []any{
		map[string]any{"ErrorEquals": []string{"SdsOther"}, "MaxAttempts": 5, "IntervalSeconds": 1},
		map[string]any{"ErrorEquals": []string{"SdsTransient"}, "MaxAttempts": 2, "IntervalSeconds": 20, "BackoffRate": 2},
	}
	flaky["Catch"] = []any{
		map[string]any{"ErrorEquals": []string{"SdsTransient"}, "ResultPath": "$.caught", "Next": "Done"},
	}
	flaky["Next"] = "Done"
	def := map[string]any{
		"StartAt": "First",
		"States": map[string]any{
			"First": first,
			"Wait":  map[string]any{"Type": "Wait", "Seconds": 30, "Next": "Flaky"},
			"Flaky": flaky,
			"Done":  map[string]any{"Type": "Pass", "End": true},
		},
	}
	b, _ := json.Marshal(def)
	return string(b)
}

func createStateMachine(t *testing.T, client *sfn.Client, name, definition string) string {
	t.Helper()
	out, err := client.CreateStateMachine(t.Context(), &sfn.CreateStateMachineInput{
		Name: aws.String(uniqueName(name)), Definition: aws.String(definition), RoleArn: aws.String(sfnRole),
	})
	if err != nil {
		t.Fatalf("create state machine %s: %v", name, err)
	}
	return *out.StateMachineArn
}

// runExecution starts an execution (unnamed when name is "") and waits for its end.
func runExecution(t *testing.T, client *sfn.Client, smARN, name, input string) *sfn.DescribeExecutionOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	in := &sfn.StartExecutionInput{StateMachineArn: aws.String(smARN), Input: aws.String(input)}
	if name != "" {
		in.Name = aws.String(name)
	}
	start, err := client.StartExecution(ctx, in)
	if err != nil {
		t.Fatalf("start execution: %v", err)
	}
	for {
		d, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: start.ExecutionArn})
		if err != nil {
			t.Fatalf("describe execution: %v", err)
		}
		if d.Status != types.ExecutionStatusRunning {
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("execution %s still running", *start.ExecutionArn)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func history(t *testing.T, client *sfn.Client, execARN string) []types.HistoryEvent {
	t.Helper()
	var events []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(client, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(execARN), MaxResults: 10})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		events = append(events, page.Events...)
	}
	return events
}

func TestStepFunctionsLambdaTasks(t *testing.T) {
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
			smARN := createStateMachine(t, client, "pipeline-"+style.name, pipeline(style, arn))
			var names []string
			// Two named executions in a row (moto defect 1), then two unnamed (defect 2).
			for i, name := range []string{"run-1", "run-2", "", ""} {
				before := len(st.Lambda.Invocations())
				start := time.Now()
				d := runExecution(t, client, smARN, name, fmt.Sprintf(`{"run":%d}`, i))
				elapsed := time.Since(start)
				if d.Status != types.ExecutionStatusSucceeded {
					t.Fatalf("execution %d: %s %s %s", i, d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
				}
				if elapsed > 25*time.Second { // real waits: 30 s + 20 s + 40 s
					t.Errorf("execution %d took %s: waits were not skipped", i, elapsed)
				}
				names = append(names, *d.Name)
				if i == 0 {
					t.Logf("%s output: %s", style.name, aws.ToString(d.Output))
				}
				checkPipelineOutput(t, style, aws.ToString(d.Output), i)
				if n := len(st.Lambda.Invocations()) - before; n != 4 {
					t.Errorf("execution %d made %d invocations, want 4 (1 + 3 attempts of the failing task)", i, n)
				}
				if i == 0 {
					checkPipelineHistory(t, style, history(t, client, *d.ExecutionArn))
				}
			}
			if names[0] != "run-1" || names[1] != "run-2" || names[2] == names[3] ||
				names[2] == "None" || names[3] == "None" || names[2] == "" {
				t.Errorf("execution names %q", names)
			}
		})
	}
}

func checkPipelineOutput(t *testing.T, style taskStyle, output string, run int) {
	t.Helper()
	var out struct {
		Run    int             `json:"run"`
		First  json.RawMessage `json:"first"`
		Caught struct {
			Error string `json:"Error"`
			Cause string `json:"Cause"`
		} `json:"caught"`
	}
	if err := json.Unmarshal([]byte(output), &out); err != nil {
		t.Fatalf("output %s: %v", output, err)
	}
	payload, err := style.payloadOf(out.First)
	if err != nil {
		t.Fatalf("first result %s: %v", out.First, err)
	}
	var echo struct {
		Echo struct {
			Step  string `json:"step"`
			Input struct {
				Run int `json:"run"`
			} `json:"input"`
		} `json:"echo"`
		Function string `json:"function"`
	}
	if err := json.Unmarshal(payload, &echo); err != nil || echo.Echo.Step != "first" || echo.Echo.Input.Run != run || echo.Function != "echo" {
		t.Errorf("first result %s (%v)", out.First, err)
	}
	var cause errorDoc
	if err := json.Unmarshal([]byte(out.Caught.Cause), &cause); err != nil ||
		out.Caught.Error != "SdsTransient" || cause != (errorDoc{"SdsTransient", "try again"}) {
		t.Errorf("caught = %+v (cause parse: %v)", out.Caught, err)
	}
}

func checkPipelineHistory(t *testing.T, style taskStyle, events []types.HistoryEvent) {
	t.Helper()
	var failures []string
	var waits int
	for _, e := range events {
		switch {
		case e.TaskFailedEventDetails != nil:
			failures = append(failures, "TaskFailed:"+aws.ToString(e.TaskFailedEventDetails.Error))
		case e.LambdaFunctionFailedEventDetails != nil:
			failures = append(failures, "LambdaFunctionFailed:"+aws.ToString(e.LambdaFunctionFailedEventDetails.Error))
		case e.Type == types.HistoryEventTypeWaitStateEntered:
			waits++
		}
	}
	want := "TaskFailed:SdsTransient"
	if style.name == "function-arn" {
		want = "LambdaFunctionFailed:SdsTransient"
	}
	if len(failures) != 3 || strings.Count(strings.Join(failures, ","), want) != 3 || waits != 1 {
		t.Errorf("%d events: failures %q (want 3 × %s), wait states %d", len(events), failures, want, waits)
	}
}
