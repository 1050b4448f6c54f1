package localaws

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// HandlerFunc is a function run in-process by RegisterHandler: it gets the request payload
// and returns the result payload (JSON) or an error.
type HandlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// FunctionError is a handler error with an explicit Lambda errorType (what Step Functions
// Retry and Catch match on). Other errors get their Go type name, as aws-lambda-go does.
type FunctionError struct {
	Type    string
	Message string
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// DefaultTimeout is the invocation timeout of functions registered without one.
const DefaultTimeout = 30 * time.Second

// RegisterHandler registers an in-process Go function under name; timeout 0 means
// DefaultTimeout. Registering a name again replaces the earlier function.
func (e *LambdaEndpoint) RegisterHandler(name string, h HandlerFunc, timeout time.Duration) error {
	if h == nil {
		return errors.New("localaws: nil handler")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return e.register(name, &goFunction{handler: h, timeout: timeout})
}

type goFunction struct {
	handler HandlerFunc
	timeout time.Duration
}

func (g *goFunction) close() {}

func (g *goFunction) run(inv *invocation) result {
	started := time.Now()
	r := g.call(inv)
	r.started = started
	return r
}

func (g *goFunction) call(inv *invocation) result {
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				msg := fmt.Sprint(v)
				done <- result{errType: "Runtime.Panic", errMsg: msg, errBody: errorBody("Runtime.Panic", msg)}
			}
		}()
		out, err := g.handler(ctx, inv.payload)
		if err != nil {
			t := errorType(err)
			done <- result{errType: t, errMsg: errorMessage(err), errBody: errorBody(t, errorMessage(err))}
			return
		}
		if len(out) == 0 {
			out = []byte("null")
		}
		done <- result{payload: out}
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		return timeoutResult(inv.id, g.timeout)
	}
}

func errorType(err error) string {
	if fe, ok := errors.AsType[*FunctionError](err); ok {
		return fe.Type
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

func errorMessage(err error) string {
	if fe, ok := errors.AsType[*FunctionError](err); ok {
		return fe.Message
	}
	return err.Error()
}

// timeoutResult is what Lambda reports when an invocation exceeds its timeout.
func timeoutResult(requestID string, timeout time.Duration) result {
	msg := fmt.Sprintf("%s %s Task timed out after %.2f seconds",
		time.Now().UTC().Format(time.RFC3339), requestID, timeout.Seconds())
	return result{errType: "Sandbox.Timedout", errMsg: msg, errBody: errorBody("Sandbox.Timedout", msg)}
}
