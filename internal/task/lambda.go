package task

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Func is one function's logic: a raw JSON event in, a JSON-able result out.
type Func func(ctx context.Context, event []byte) (any, error)

// Op is an operation as a method expression of Service, such as
// (*Service).CopyToS3: what a function's main package passes to Start.
type Op func(s *Service, ctx context.Context, event []byte) (any, error)

// Handler adapts fn to the Lambda runtime: one JSON log line per
// invocation, and errors reported with our error types. It takes the raw
// payload itself, so that even an event that is not JSON gets an
// InvalidInput error rather than the runtime's own decoding error.
func (s *Service) Handler(function string, fn Func) lambda.Handler {
	return handler{s: s, function: function, fn: fn}
}

type handler struct {
	s        *Service
	function string
	fn       Func
}

func (h handler) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	start := time.Now()
	// Stop a little before Lambda would kill the process, so that a failure
	// is reported with its type and an unfinished upload is aborted.
	if dl, ok := ctx.Deadline(); ok {
		margin := min(max(time.Until(dl)/10, 2*time.Second), 30*time.Second)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
		defer cancel()
	}
	attrs := logAttrs(ctx, h.function, event)
	out, err := h.fn(ctx, event)
	var res []byte
	if err == nil {
		if res, err = json.Marshal(out); err != nil {
			err = &Error{Type: Internal, Message: "encoding the result: " + err.Error()}
		}
	}
	attrs = append(attrs, slog.Int64("durationMs", time.Since(start).Milliseconds()))
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = &Error{Type: FunctionTimeout, Message: "stopped before the Lambda timeout: " + classify(err).Message, Err: err}
	}
	if err != nil {
		e := classify(err)
		h.s.log.LogAttrs(ctx, slog.LevelError, "failed", append(attrs, slog.String("errorType", e.Type), slog.String("error", e.Message))...)
		return nil, LambdaError(e)
	}
	if st := resultStatus(out); st != "" {
		attrs = append(attrs, slog.String("status", st))
	}
	h.s.log.LogAttrs(ctx, slog.LevelInfo, "done", attrs...)
	return res, nil
}

// logAttrs picks the identifying fields of an event for the log line; the
// event itself is not logged.
func logAttrs(ctx context.Context, function string, event []byte) []slog.Attr {
	attrs := []slog.Attr{slog.String("function", function)}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("requestId", lc.AwsRequestID))
	}
	var ids struct {
		Operation      string `json:"operation"`
		AccessID       string `json:"accessId"`
		DataSourceName string `json:"dataSourceName"`
		JobID          string `json:"jobId"`
	}
	if json.Unmarshal(event, &ids) == nil {
		for _, a := range []struct{ k, v string }{{"operation", ids.Operation}, {"accessId", ids.AccessID}, {"dataSourceName", ids.DataSourceName}, {"jobId", ids.JobID}} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, truncate(a.v, 80)))
			}
		}
	}
	return attrs
}

func resultStatus(out any) string {
	switch v := out.(type) {
	case State:
		return v.Status
	case map[string]any:
		if raw, ok := v["status"].(json.RawMessage); ok {
			var s string
			json.Unmarshal(raw, &s)
			return s
		}
	}
	return ""
}

// Start runs the operation op as the Lambda function named function, with
// the dependencies needs build. SDK clients and the key cache are created
// once per cold start; a dependency that cannot be built (ARCHIVE_BUCKET
// unset) fails every invocation as a configuration error.
func Start(function string, op Op, needs ...Need) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	// The runtime library reports failures through the standard logger;
	// routing it through slog keeps every line JSON.
	slog.SetDefault(log.With(slog.String("function", function)))
	env, err := NewEnv(context.Background(), log)
	var s *Service
	if err == nil {
		s, err = NewServiceFromEnv(env, needs...)
	}
	if err != nil {
		log.Error("configuration", slog.String("function", function), slog.String("error", err.Error()))
		lambda.StartWithOptions(func(context.Context, json.RawMessage) (any, error) {
			return nil, LambdaError(&Error{Type: Internal, Message: "configuration: " + err.Error()})
		})
		return
	}
	lambda.StartWithOptions(s.Handler(function, func(ctx context.Context, event []byte) (any, error) {
		return op(s, ctx, event)
	}))
}
