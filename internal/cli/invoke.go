package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/sdsops/sdsops/internal/task"
)

// Invoker runs one of the stack's functions (lambda:InvokeFunction): the
// dry runs ask the functions that do the real thing, with their own
// configuration and access, to plan without doing.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// FunctionError is a function's failure: its errorType (one of the task
// package's) and message.
type FunctionError struct {
	Function string
	Type     string `json:"errorType"`
	Message  string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// invoke runs the function env or logicalID names with payload and
// decodes its result into out.
func (a *app) invoke(ctx context.Context, env, logicalID string, payload, out any) error {
	name, err := a.function(ctx, env, logicalID)
	if err != nil {
		return err
	}
	c, err := a.lambda(ctx)
	if err != nil {
		return err
	}
	return invokeWith(ctx, c, name, payload, out)
}

func invokeWith(ctx context.Context, c Invoker, name string, payload, out any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	res, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: b})
	if err != nil {
		return fmt.Errorf("invoking %s: %w", name, err)
	}
	if res.FunctionError != nil {
		fe := &FunctionError{Function: name}
		if json.Unmarshal(res.Payload, fe) != nil || fe.Type == "" {
			fe.Type, fe.Message = aws.ToString(res.FunctionError), string(res.Payload)
		}
		if fe.Type == task.InvalidInput {
			return &exitError{ExitUsage, fe}
		}
		return fe
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		return fmt.Errorf("%s answered %q: %w", name, clip(string(res.Payload), 200), err)
	}
	return nil
}
