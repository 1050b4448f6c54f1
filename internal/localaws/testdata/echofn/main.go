// Command echofn is a test Lambda function for the localaws runtime runner. The request
// selects what it does: {"action":"echo"} (default) returns the request and some context,
// "error" fails with errorType/message, "sleep" sleeps ms milliseconds ignoring its
// deadline, "crash" exits with code, "panic" panics. "log" is printed to stdout and stderr.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Action    string `json:"action"`
	ErrorType string `json:"errorType"`
	Message   string `json:"message"`
	Millis    int    `json:"ms"`
	Code      int    `json:"code"`
	Log       string `json:"log"`
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var req request
	_ = json.Unmarshal(raw, &req) // other JSON values are just echoed
	if req.Log != "" {
		fmt.Println("stdout: " + req.Log)
		fmt.Fprintln(os.Stderr, "stderr: "+req.Log)
	}
	switch req.Action {
	case "error":
		return nil, messages.InvokeResponse_Error{Type: req.ErrorType, Message: req.Message}
	case "sleep":
		time.Sleep(time.Duration(req.Millis) * time.Millisecond)
	case "crash":
		code := req.Code
		if code == 0 {
			code = 2
		}
		os.Exit(code)
	case "panic":
		panic(req.Message)
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	return map[string]any{
		"echo":      raw,
		"function":  lambdacontext.FunctionName,
		"memory":    lambdacontext.MemoryLimitInMB,
		"requestId": lc.AwsRequestID,
		"arn":       lc.InvokedFunctionArn,
		"pid":       os.Getpid(),
		"region":    os.Getenv("AWS_REGION"),
		"handler":   os.Getenv("_HANDLER"),
		"endpoint":  os.Getenv("AWS_ENDPOINT_URL"),
		"extra":     os.Getenv("ECHO_EXTRA"),
		"deadline":  deadline.UnixMilli(),
	}, nil
}

func main() {
	fmt.Fprintln(os.Stderr, "echofn init")
	lambda.Start(handle)
}
