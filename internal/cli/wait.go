package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
)

// Execution is the JSON form of `sdsops wait`: the API's answer for the
// execution, with the workflow's steps from its history.
type Execution struct {
	ExecutionArn    string          `json:"executionArn"`
	StateMachineArn string          `json:"stateMachineArn"`
	Status          string          `json:"status"`
	StartDate       time.Time       `json:"startDate"`
	StopDate        time.Time       `json:"stopDate,omitzero"`
	Output          json.RawMessage `json:"output,omitempty"`
	Error           string          `json:"error,omitempty"`
	Cause           string          `json:"cause,omitempty"`
	// Steps are the states run, in order; empty when the caller may not
	// read the history (states:GetExecutionHistory).
	Steps []Step `json:"steps"`
}

// Step is one state of the workflow as run.
type Step struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"` // running, succeeded or failed
	EnteredAt time.Time `json:"enteredAt"`
	ExitedAt  time.Time `json:"exitedAt,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// HistoryReader reads an execution's history (states:GetExecutionHistory).
type HistoryReader interface {
	GetExecutionHistory(ctx context.Context, in *sfn.GetExecutionHistoryInput, opts ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
}

func runWait(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 0, "give up after this long (exit 1; the execution goes on); 0: no limit")
	pos, err := a.parse(fs, args, 1, 1, verbs()["wait"].usage)
	if err != nil {
		return err
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	x, err := a.follow(ctx, pos[0])
	if err != nil {
		return err
	}
	if a.opts.json {
		if err := writeJSON(a.io.Stdout, x); err != nil {
			return err
		}
	}
	return outcome(x)
}

// outcome is the exit of a followed execution.
func outcome(x *Execution) error {
	if x.Status != "SUCCEEDED" {
		return &exitError{ExitFailed, errSilent}
	}
	return nil
}

// apiExecution is GET /executions/{id}.
type apiExecution struct {
	ExecutionArn    string          `json:"executionArn"`
	StateMachineArn string          `json:"stateMachineArn"`
	Status          string          `json:"status"`
	StartDate       float64         `json:"startDate"`
	StopDate        *float64        `json:"stopDate"`
	Output          json.RawMessage `json:"output"`
	Error           *string         `json:"error"`
	Cause           *string         `json:"cause"`
}

func seconds(f float64) time.Time {
	return time.UnixMilli(int64(f * 1000)).UTC()
}

// follow polls the execution through the API until it stops, showing
// each step as it ends (text mode), and returns its end.
func (a *app) follow(ctx context.Context, arn string) (*Execution, error) {
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":execution:") {
		return nil, usageErrorf("%q is not an execution ARN (arn:aws:states:…:execution:…)", arn)
	}
	c, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	var history HistoryReader
	if h, err := a.sfn(ctx); err == nil {
		history = h
	}
	shown := -1 // the header is not out yet
	for {
		var d apiExecution
		if err := c.do(ctx, "GET", "/executions/"+url.PathEscape(arn), nil, &d); err != nil {
			var ae *APIError
			if errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 400) {
				return nil, &exitError{ExitUsage, fmt.Errorf("execution %s: %w", arn, err)}
			}
			return nil, err
		}
		x := &Execution{ExecutionArn: d.ExecutionArn, StateMachineArn: d.StateMachineArn, Status: d.Status,
			StartDate: seconds(d.StartDate), Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause), Steps: []Step{}}
		if d.StopDate != nil {
			x.StopDate = seconds(*d.StopDate)
		}
		if len(d.Output) > 0 && string(d.Output) != "null" {
			x.Output = d.Output
		}
		if history != nil {
			steps, err := readSteps(ctx, history, arn)
			if err != nil {
				if !a.opts.json {
					fmt.Fprintf(a.io.Stderr, "(no step display: %v)\n", err)
				}
				history = nil
			} else {
				x.Steps = steps
			}
		}
		if !a.opts.json {
			if shown < 0 {
				fmt.Fprintf(a.io.Stdout, "following %s\n", arn)
				shown = 0
			}
			shown = showSteps(a, x, shown)
		}
		if x.Status != "RUNNING" {
			if !a.opts.json {
				printEnd(a, x)
			}
			return x, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("execution %s still %s: %w", arn, x.Status, ctx.Err())
		case <-time.After(a.opts.interval):
		}
	}
}

// readSteps makes steps of the execution's history: one per state
// entered, ended by its exit or a failure.
func readSteps(ctx context.Context, h HistoryReader, arn string) ([]Step, error) {
	steps := []Step{}
	open := map[string]int{} // state name → index of its running step
	in := &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000}
	for {
		page, err := h.GetExecutionHistory(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, ev := range page.Events {
			at := aws.ToTime(ev.Timestamp).UTC()
			switch {
			case ev.StateEnteredEventDetails != nil:
				open[aws.ToString(ev.StateEnteredEventDetails.Name)] = len(steps)
				steps = append(steps, Step{Name: aws.ToString(ev.StateEnteredEventDetails.Name), Status: "running", EnteredAt: at})
			case ev.StateExitedEventDetails != nil:
				if i, ok := open[aws.ToString(ev.StateExitedEventDetails.Name)]; ok {
					if steps[i].Status == "running" {
						steps[i].Status = "succeeded"
					}
					steps[i].ExitedAt = at
					delete(open, steps[i].Name)
				}
			default:
				if msg := failure(ev); msg != "" {
					// A failure belongs to the newest step still running.
					for i := len(steps) - 1; i >= 0; i-- {
						if steps[i].Status == "running" {
							steps[i].Status, steps[i].Error = "failed", msg
							break
						}
					}
				}
			}
		}
		if page.NextToken == nil {
			return steps, nil
		}
		in.NextToken = page.NextToken
	}
}

// failure is the error of a failed task or execution event, "" for
// other events.
func failure(ev sfntypes.HistoryEvent) string {
	pick := func(e, c *string) string {
		return joinNonEmpty(": ", aws.ToString(e), clip(causeText(aws.ToString(c)), 200))
	}
	switch {
	case ev.TaskFailedEventDetails != nil:
		return pick(ev.TaskFailedEventDetails.Error, ev.TaskFailedEventDetails.Cause)
	case ev.LambdaFunctionFailedEventDetails != nil:
		return pick(ev.LambdaFunctionFailedEventDetails.Error, ev.LambdaFunctionFailedEventDetails.Cause)
	case ev.ExecutionFailedEventDetails != nil:
		return pick(ev.ExecutionFailedEventDetails.Error, ev.ExecutionFailedEventDetails.Cause)
	}
	return ""
}

// showSteps prints the steps that ended since the last call; it returns
// how many have been shown.
func showSteps(a *app, x *Execution, shown int) int {
	i := shown
	for ; i < len(x.Steps) && x.Steps[i].Status != "running"; i++ {
		s := x.Steps[i]
		mark := "ok    "
		if s.Status == "failed" {
			mark = "FAILED"
		}
		took := ""
		if !s.ExitedAt.IsZero() {
			took = s.ExitedAt.Sub(s.EnteredAt).Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(a.io.Stdout, "  %s %-28s %s\n", mark, s.Name, joinNonEmpty("  ", took, s.Error))
	}
	return i
}

func printEnd(a *app, x *Execution) {
	took := ""
	if !x.StopDate.IsZero() {
		took = " after " + x.StopDate.Sub(x.StartDate).Round(10*time.Millisecond).String()
	}
	fmt.Fprintf(a.io.Stdout, "%s%s\n", x.Status, took)
	if x.Error != "" || x.Cause != "" {
		fmt.Fprintf(a.io.Stdout, "error: %s\n", joinNonEmpty(": ", x.Error, causeText(x.Cause)))
	}
	printOutput(a.io.Stdout, x.Output)
}

// printOutput shows the scalar fields of an execution's output, one a
// line; --json has all of it.
func printOutput(w io.Writer, raw json.RawMessage) {
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(out)) {
		switch v := out[k].(type) {
		case string, float64, bool:
			if !strings.HasSuffix(k, "Url") {
				fmt.Fprintf(w, "  %-18s %v\n", k, v)
			}
		}
	}
}

// causeText is the message of a cause that is a Lambda error document
// ({"errorType","errorMessage"}), else the cause as it is.
func causeText(cause string) string {
	var e FunctionError
	if json.Unmarshal([]byte(cause), &e) == nil && e.Message != "" {
		return e.Message
	}
	return cause
}
