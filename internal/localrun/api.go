package localrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/sds"
)

// The local API stands in for the deployed REST API (statemachine/
// api.openapi.yaml): the same routes, bodies and answers under the stage
// /v1, requests signed with SigV4 for execute-api and checked against the
// credentials the local stack prints. Its edge checks are lighter than
// the mapping templates' (path parameters, JSON body, confirm): every
// field is validated again by the functions, as on AWS.

// APIStage is the deployed API's stage, which starts every path.
const APIStage = "/v1"

// Local credentials the API accepts signatures of (make up prints them).
const (
	LocalAccessKeyID     = "testing"
	LocalSecretAccessKey = "testing"
)

// startRoute is one route that starts an execution of machine; confirm
// names the body field holding the name the caller must repeat, "" when
// none.
type startRoute struct {
	method, suffix, machine string
	confirm                 bool
	// target is the body field that, when set, the confirmation must
	// equal instead of the path's name (restore's targetName).
	target string
}

var startRoutes = []startRoute{
	{http.MethodPost, "/backups", "backup", false, ""},
	{http.MethodPost, "/conversions", "convert", false, ""},
	{http.MethodPut, "/visibility", "setpublic", false, ""},
	{http.MethodPost, "/restores", "restore", true, "targetName"},
	{http.MethodPost, "/rollbacks", "rollback", true, ""},
	{http.MethodDelete, "", "delete", true, ""},
}

var executionARN = regexp.MustCompile(`^arn:[a-z-]+:states:[a-z0-9-]+:[0-9]{12}:execution:[A-Za-z0-9_-]{1,80}:[^:"\\\s\x00-\x1f\x7f-\x9f]{1,80}$`)

// API serves the REST API of the stack from e.
type API struct {
	env    *Env
	region string
	now    func() time.Time
}

// NewAPI returns the local API of e.
func NewAPI(e *Env) *API {
	return &API{env: e, region: e.Stack.Moto.Region(), now: time.Now}
}

// ServeAPI serves the API on a free loopback port; the URL ends with the
// stage, as the stack output ApiUrl does.
func (e *Env) ServeAPI() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: NewAPI(e), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + APIStage, func() { srv.Close() }, nil
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "unreadable body")
		return
	}
	if err := a.checkSignature(r, body); err != nil {
		apiError(w, http.StatusForbidden, "IncompleteSignatureException", err.Error())
		return
	}
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), APIStage+"/")
	if !ok {
		apiError(w, http.StatusNotFound, "NotFound", "no such route (the API's paths start with "+APIStage+")")
		return
	}
	parts := strings.Split(path, "/")
	ctx := r.Context()
	switch {
	case parts[0] == "executions" && len(parts) >= 2 && r.Method == http.MethodGet:
		id := strings.Join(parts[1:], "/")
		if u, err := url.PathUnescape(id); err == nil {
			id = u
		}
		a.describe(ctx, w, id)
	case parts[0] == "datasources" && len(parts) == 1 && r.Method == http.MethodGet:
		a.inventory(ctx, w, r, nil)
	case parts[0] == "datasources" && len(parts) == 4 && parts[3] == "archives" && r.Method == http.MethodGet:
		a.inventory(ctx, w, r, map[string]string{"accessId": parts[1], "name": parts[2]})
	case parts[0] == "datasources" && (len(parts) == 3 || len(parts) == 4):
		suffix := ""
		if len(parts) == 4 {
			suffix = "/" + parts[3]
		}
		for _, rt := range startRoutes {
			if rt.method == r.Method && rt.suffix == suffix {
				a.start(ctx, w, rt, parts[1], parts[2], body)
				return
			}
		}
		apiError(w, http.StatusNotFound, "NotFound", "no such route")
	default:
		apiError(w, http.StatusNotFound, "NotFound", "no such route")
	}
}

// checkSignature recomputes the request's SigV4 signature for
// execute-api with the local credentials and compares it.
func (a *API) checkSignature(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		return errors.New("missing Authentication Token: requests must be signed with SigV4 (service execute-api)")
	}
	if !strings.Contains(auth, "/"+a.region+"/execute-api/aws4_request") {
		return errors.New("credential should be scoped to region " + a.region + " and service execute-api")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errors.New("no valid X-Amz-Date")
	}
	if d := a.now().Sub(at); d > 15*time.Minute || d < -15*time.Minute {
		return errors.New("signature expired")
	}
	_, signed, _ := strings.Cut(auth, "SignedHeaders=")
	signed, _, _ = strings.Cut(signed, ",")
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	check, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range strings.Split(signed, ";") {
		if h != "host" {
			check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: LocalAccessKeyID, SecretAccessKey: LocalSecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, check, hex.EncodeToString(sum[:]), "execute-api", a.region, at); err != nil {
		return err
	}
	if check.Header.Get("Authorization") != auth {
		return errors.New("the request signature we calculated does not match the signature you provided")
	}
	return nil
}

func (a *API) start(ctx context.Context, w http.ResponseWriter, rt startRoute, accessID, rawName string, body []byte) {
	name, err := url.PathUnescape(rawName)
	if err != nil {
		name = rawName
	}
	fields := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			apiError(w, http.StatusBadRequest, "BadRequestBody", "Invalid request body")
			return
		}
	}
	if err := (sds.DataSource{AccessID: accessID, Name: name}).Validate(); err != nil {
		refused(w)
		return
	}
	if rt.confirm {
		want := name
		if t, _ := fields[rt.target].(string); rt.target != "" && t != "" {
			want = t
		}
		if c, _ := fields["confirm"].(string); c != want {
			refused(w)
			return
		}
	}
	fields["accessId"], fields["dataSourceName"] = accessID, name
	input, _ := json.Marshal(fields)
	out, err := a.env.SFN.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(a.env.StateMachines[rt.machine]), Input: aws.String(string(input)),
	})
	if err != nil {
		apiError(w, http.StatusBadGateway, "StepFunctionsUnavailable", "Step Functions failed; retry later")
		return
	}
	arn := aws.ToString(out.ExecutionArn)
	writeJSON(w, http.StatusAccepted, map[string]any{
		"executionArn": arn, "startDate": epoch(aws.ToTime(out.StartDate)), "statusPath": APIStage + "/executions/" + arn,
	})
}

func refused(w http.ResponseWriter) {
	apiError(w, http.StatusBadRequest, "InvalidRequest", "accessId must be 1-64 letters or digits, name 1-50 letters, digits or ~`!$^_={}-, body fields as documented (confirm equal to the target name)")
}

func (a *API) describe(ctx context.Context, w http.ResponseWriter, id string) {
	if !executionARN.MatchString(id) {
		apiError(w, http.StatusBadRequest, "InvalidArn", "Invalid Arn: '"+id+"'")
		return
	}
	d, err := a.env.Describe(ctx, id)
	var missing *sfntypes.ExecutionDoesNotExist
	switch {
	case errors.As(err, &missing):
		apiError(w, http.StatusNotFound, "ExecutionDoesNotExist", "Execution Does Not Exist: '"+id+"'")
		return
	case err != nil:
		apiError(w, http.StatusBadGateway, "StepFunctionsUnavailable", "Step Functions failed; retry later")
		return
	}
	out := map[string]any{
		"executionArn": aws.ToString(d.ExecutionArn), "stateMachineArn": aws.ToString(d.StateMachineArn),
		"status": string(d.Status), "startDate": epoch(aws.ToTime(d.StartDate)),
		"stopDate": nil, "output": nil, "error": nil, "cause": nil,
	}
	if d.StopDate != nil {
		out["stopDate"] = epoch(*d.StopDate)
	}
	if d.Output != nil {
		out["output"] = json.RawMessage(*d.Output)
	}
	if d.Error != nil {
		out["error"] = *d.Error
	}
	if d.Cause != nil {
		out["cause"] = *d.Cause
	}
	writeJSON(w, http.StatusOK, out)
}

// inventory hands the request to the inventory function as API Gateway's
// Lambda proxy integration does, and relays its answer.
func (a *API) inventory(ctx context.Context, w http.ResponseWriter, r *http.Request, path map[string]string) {
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	ev, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: r.Method, Path: r.URL.Path, PathParameters: path, QueryStringParameters: q})
	res, err := a.env.Stack.Lambda.Invoke(ctx, "inventory", ev)
	if err != nil || res.FunctionError != "" {
		apiError(w, http.StatusBadGateway, "InternalServerErrorException", "Internal server error")
		return
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(res.Payload, &resp); err != nil || resp.StatusCode == 0 {
		apiError(w, http.StatusBadGateway, "InternalServerErrorException", "Internal server error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	io.WriteString(w, resp.Body)
}

// epoch is a date as Step Functions' JSON protocol writes it: seconds.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func apiError(w http.ResponseWriter, status int, kind, msg string) {
	writeJSON(w, status, map[string]string{"error": kind, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
