package localaws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const (
	invokePathPrefix = "/2015-03-31/functions/"
	invokePathSuffix = "/invocations"
	// maxPayload is Lambda's limit for a synchronous request payload.
	maxPayload = 6 << 20
)

// ServeHTTP answers Lambda Invoke requests and passes everything else to the upstream.
// Routing is by hand: http.ServeMux would redirect S3 keys such as "a//b".
func (e *LambdaEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if ref, ok := strings.CutPrefix(r.URL.Path, invokePathPrefix); ok {
			if ref, ok := strings.CutSuffix(ref, invokePathSuffix); ok && ref != "" && !strings.Contains(ref, "/") {
				e.serveInvoke(w, r, functionName(ref))
				return
			}
		}
	}
	if e.upstream.Load() == nil {
		writeAPIError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "no upstream configured for "+r.URL.Path)
		return
	}
	if f := e.fault.Load(); f != nil {
		if status, code := (*f)(r); status != 0 {
			// Read the request first, as a failing service would, so the
			// client sees the answer and not a reset while sending.
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>injected by the local endpoint</Message></Error>", code)
			return
		}
	}
	e.proxy.ServeHTTP(w, r)
}

// UpstreamFault decides, per request passed to the upstream, whether to fail
// it instead: a non-zero status is answered with an S3-style XML error of
// the given code. Tests use it to make S3 fail in the middle of an upload.
type UpstreamFault func(r *http.Request) (status int, code string)

// SetUpstreamFault arms f for every later request to the upstream; nil
// disarms it.
func (e *LambdaEndpoint) SetUpstreamFault(f UpstreamFault) {
	if f == nil {
		e.fault.Store(nil)
		return
	}
	e.fault.Store(&f)
}

// functionName reduces the forms Lambda accepts (name, name:qualifier,
// account:function:name, full ARN) to the function name.
func functionName(ref string) string {
	parts := strings.Split(ref, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn":
		return parts[6]
	case len(parts) >= 3 && parts[1] == "function":
		return parts[2]
	default:
		return parts[0]
	}
}

func (e *LambdaEndpoint) serveInvoke(w http.ResponseWriter, r *http.Request, name string) {
	f := e.lookup(name)
	if f == nil {
		writeAPIError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+e.FunctionARN(name))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
			return
		}
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "read request: "+err.Error())
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	} else if !json.Valid(body) {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}
	// Only synchronous invocations: Step Functions and the tests make no other kind.
	if t := r.Header.Get("X-Amz-Invocation-Type"); t != "" && t != "RequestResponse" {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", "unsupported X-Amz-Invocation-Type (only RequestResponse is served)")
		return
	}
	res, err := e.Invoke(r.Context(), name, body)
	if errors.Is(err, ErrFunctionNotFound) {
		writeAPIError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+e.FunctionARN(name))
		return
	}
	if err != nil {
		return // the caller has gone
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Executed-Version", "$LATEST")
	h.Set("X-Amzn-Requestid", res.RequestID)
	if res.FunctionError != "" {
		h.Set("X-Amz-Function-Error", res.FunctionError)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Payload)
}

// writeAPIError answers in the shape AWS SDKs parse for Lambda API errors.
func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}

// errorBody builds the body Lambda returns for a failed invocation.
func errorBody(errType, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{errType, msg})
	return b
}
