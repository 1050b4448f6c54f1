package templatecheck

// The API refuses bad input before an execution starts. API Gateway checks
// a request in two layers, and these tests run each with a real engine
// (helpers in api_harness_test.go):
//  1. the request validator: the body against the route's JSON schema model
//     (TestAPIRequestModels, python's jsonschema, draft-04);
//  2. the mapping template (Velocity), which checks the path parameters,
//     which API Gateway cannot, and builds the StartExecution request
//     (TestAPIRequestTemplates*, velocityjs with API Gateway's $input,
//     $util and $context).
// A template signals a refusal with an execution name Step Functions
// rejects (InvalidName: nothing starts, the caller gets 400), or by
// throwing (API Gateway answers 500 and calls nothing). Whatever the input,
// a rendered request must be one of those or a well-formed request whose
// execution input holds exactly the expected fields.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// startRoute is a route that starts an execution.
type startRoute struct {
	key     string
	machine string // logical id of the state machine it starts
	// body returns a valid body for a request naming the data source name,
	// and the fields of it the execution input carries.
	body func(name string) (string, map[string]any)
}

var startRoutes = []startRoute{
	{"POST /datasources/{accessId}/{name}/backups", "BackupStateMachine",
		func(string) (string, map[string]any) { return "", nil }},
	{"DELETE /datasources/{accessId}/{name}", "DeleteStateMachine",
		func(name string) (string, map[string]any) {
			b, _ := json.Marshal(map[string]string{"confirm": name})
			return string(b), map[string]any{"confirm": name}
		}},
	{"PUT /datasources/{accessId}/{name}/visibility", "SetPublicStateMachine",
		func(string) (string, map[string]any) { return `{"public":true}`, map[string]any{"public": true} }},
	{"POST /datasources/{accessId}/{name}/conversions", "ConvertStateMachine",
		func(string) (string, map[string]any) { return "", nil }},
	{"POST /datasources/{accessId}/{name}/restores", "RestoreStateMachine",
		func(name string) (string, map[string]any) {
			b, _ := json.Marshal(map[string]string{"confirm": name})
			return string(b), map[string]any{"confirm": name}
		}},
	{"POST /datasources/{accessId}/{name}/rollbacks", "RollbackStateMachine",
		func(name string) (string, map[string]any) {
			b, _ := json.Marshal(map[string]string{"confirm": name, "jobId": "J1"})
			return string(b), map[string]any{"confirm": name, "jobId": "J1"}
		}},
}

const executionStatusRoute = "GET /executions/{id}"

// Path parameters of a valid request.
const (
	okAccessID = "Abc123"
	okName     = "Stores_2024"
)

// Ways path parameters may reach the template. The tests do not rely on
// which one API Gateway uses: every case runs both ways.
var pathModes = []struct {
	name   string
	decode func(string) string
}{
	{"as sent", func(s string) string { return s }},
	{"percent-decoded by API Gateway", percentDecode},
}

// TestAPIRoutesValidateBeforeStarting checks the wiring the other tests
// rely on: every route that starts an execution validates its body against
// a model and its path parameters, refuses other content types, and has a
// request template; and every route is covered by these tests.
func TestAPIRoutesValidateBeforeStarting(t *testing.T) {
	routes, defs := apiDefinition(t)
	covered := map[string]bool{executionStatusRoute: true}
	for _, sr := range startRoutes {
		covered[sr.key] = true
		r := routes[sr.key]
		if r == nil {
			t.Errorf("%s: no such route in the API", sr.key)
			continue
		}
		if r.action != "StartExecution" {
			t.Errorf("%s: the integration calls states:action/%s, want StartExecution", sr.key, r.action)
		}
		if r.validator["validateRequestBody"] != true || r.validator["validateRequestParameters"] != true {
			t.Errorf("%s: request validator %v must validate the body and the parameters", sr.key, r.validator)
		}
		if r.model == "" || defs[r.model] == nil {
			t.Errorf("%s: body model %q is not among the API's definitions", sr.key, r.model)
		} else if obj(defs[r.model])["additionalProperties"] != false {
			t.Errorf("%s: model %s allows fields it does not name (additionalProperties must be false)", sr.key, r.model)
		}
		integ := obj(r.op["x-amazon-apigateway-integration"])
		if p := str(integ["passthroughBehavior"]); p != "never" {
			t.Errorf("%s: passthroughBehavior %q, want never (other content types must be refused, not passed to Step Functions)", sr.key, p)
		}
		if n := len(obj(integ["requestTemplates"])); n != 1 || r.template == "" {
			t.Errorf("%s: want exactly one request template, for application/json; have %d", sr.key, n)
		}
		required := map[string]bool{}
		for _, p := range list(r.op["parameters"]) {
			if str(obj(p)["in"]) == "path" && obj(p)["required"] == true {
				required[str(obj(p)["name"])] = true
			}
		}
		if !required["accessId"] || !required["name"] {
			t.Errorf("%s: path parameters accessId and name must be declared required", sr.key)
		}
	}
	if r := routes[executionStatusRoute]; r == nil {
		t.Errorf("%s: no such route in the API", executionStatusRoute)
	} else {
		if r.action != "DescribeExecution" {
			t.Errorf("%s: the integration calls states:action/%s, want DescribeExecution", executionStatusRoute, r.action)
		}
		if r.validator["validateRequestParameters"] != true || r.template == "" {
			t.Errorf("%s: want a request template and a validator of the path parameters", executionStatusRoute)
		}
	}
	for _, k := range sortedRouteKeys(routes) {
		if !covered[k] {
			t.Errorf("%s: a route these tests do not cover; add its cases to api_requests_test.go", k)
		}
	}
}

// bodyCase is a request body and what the route's model must say of it.
type bodyCase struct {
	why   string
	body  string
	valid bool
	// templateRefuses: the model accepts the body but the mapping template
	// must refuse the request (DELETE: confirm must equal the name).
	templateRefuses bool
}

var long = strings.Repeat

var bodyCases = map[string][]bodyCase{
	"POST /datasources/{accessId}/{name}/conversions": {
		{why: "no body: every archive of the data source", body: "", valid: true},
		{why: "an empty object", body: `{}`, valid: true},
		{why: "an archive key", body: `{"key":"sds-exports/Abc123/Stores_2024/2024/05/01/5e1b0c7fd3a94e0f8b6a2c4d9e8f7a61.xml"}`, valid: true},
		{why: "a manifest key of a name with every special character", body: "{\"key\":\"sds-exports/Abc123/a~`!$^_={}-/2024/05/01/j1.xml.manifest.json\"}", valid: true},
		{why: "an empty key", body: `{"key":""}`},
		{why: "a key with a space", body: `{"key":"a b.xml"}`},
		{why: "a key with a quote", body: `{"key":"a\"b.xml"}`},
		{why: "a key with a backslash", body: `{"key":"a\\b.xml"}`},
		{why: "a key that is not ASCII", body: `{"key":"é.xml"}`},
		{why: "JSON injection in the key", body: `{"key":"a.xml\",\"prefix\":\"sds-exports/"}`},
		{why: "a 1025-character key (oversize)", body: `{"key":"` + long("k", 1025) + `"}`},
		{why: "a key that is a number", body: `{"key":5}`},
		{why: "a key that is null", body: `{"key":null}`},
		{why: "a prefix (not offered by the API)", body: `{"prefix":"sds-exports/"}`},
		{why: "an extra field", body: `{"key":"a.xml","force":true}`},
		{why: "an array body", body: `[]`},
		{why: "a string body", body: `"a.xml"`},
		{why: "a body that is not JSON", body: `key=a.xml`},
	},
	"POST /datasources/{accessId}/{name}/backups": {
		{why: "no body: back up the published version", body: "", valid: true},
		{why: "an empty object", body: `{}`, valid: true},
		{why: "a job id", body: `{"jobId":"2f6c1e1a-7b7e-4c1b-9d0e-3c2b1a0f9e8d"}`, valid: true},
		{why: "a secret ARN", body: `{"masterKeySecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:sds/master-AbCdEf"}`, valid: true},
		{why: "both fields, with spaces around", body: " {\"jobId\" : \"J1\", \"masterKeySecretId\": \"sds/master\"}\n", valid: true},
		{why: "a 64-character job id", body: `{"jobId":"` + long("j", 64) + `"}`, valid: true},
		{why: "a 2048-character secret id", body: `{"masterKeySecretId":"` + long("s", 2048) + `"}`, valid: true},
		{why: "an empty job id", body: `{"jobId":""}`},
		{why: "a 65-character job id (oversize)", body: `{"jobId":"` + long("j", 65) + `"}`},
		{why: "a 100000-character job id (oversize)", body: `{"jobId":"` + long("j", 100000) + `"}`},
		{why: "a job id with a space", body: `{"jobId":"a b"}`},
		{why: "a job id with a quote", body: `{"jobId":"a\"b"}`},
		{why: "a job id with a backslash", body: `{"jobId":"a\\b"}`},
		{why: "a job id with a slash", body: `{"jobId":"a/b"}`},
		{why: "a job id with a NUL", body: `{"jobId":"a\u0000b"}`},
		{why: "a job id that is not ASCII", body: `{"jobId":"é"}`},
		{why: "JSON injection in the job id", body: `{"jobId":"J1\",\"masterKeySecretId\":\"other"}`},
		{why: "a job id that is a number", body: `{"jobId":5}`},
		{why: "a job id that is null", body: `{"jobId":null}`},
		{why: "a job id that is a boolean", body: `{"jobId":true}`},
		{why: "a job id that is an array", body: `{"jobId":["J1"]}`},
		{why: "a job id that is an object", body: `{"jobId":{"id":"J1"}}`},
		{why: "an empty secret id", body: `{"masterKeySecretId":""}`},
		{why: "a secret id with a space", body: `{"masterKeySecretId":"sds master"}`},
		{why: "a secret id with a quote", body: `{"masterKeySecretId":"sds\"master"}`},
		{why: "a 2049-character secret id (oversize)", body: `{"masterKeySecretId":"` + long("s", 2049) + `"}`},
		{why: "a secret id that is null", body: `{"masterKeySecretId":null}`},
		{why: "an extra field", body: `{"jobId":"J1","force":true}`},
		{why: "a field name in another case", body: `{"JobId":"J1"}`},
		{why: "an array body", body: `[]`},
		{why: "an array of the right object", body: `[{"jobId":"J1"}]`},
		{why: "a string body", body: `"J1"`},
		{why: "a number body", body: `5`},
		{why: "a null body", body: `null`},
		{why: "a body that is not JSON", body: `jobId=J1`},
		{why: "truncated JSON", body: `{"jobId":"J1"`},
		{why: "NaN, which is not JSON", body: `{"jobId":NaN}`},
	},
	"DELETE /datasources/{accessId}/{name}": {
		{why: "confirm only", body: `{"confirm":"Stores_2024"}`, valid: true},
		{why: "every field", body: `{"confirm":"Stores_2024","isStaging":true,"backupFirst":false,"masterKeySecretId":"sds/master"}`, valid: true},
		{why: "isStaging false, backupFirst true", body: `{"confirm":"Stores_2024","isStaging":false,"backupFirst":true}`, valid: true},
		{why: "confirm in another case than the name", body: `{"confirm":"stores_2024"}`, valid: true, templateRefuses: true},
		{why: "confirm with a trailing space", body: `{"confirm":"Stores_2024 "}`, valid: true, templateRefuses: true},
		{why: "confirm empty", body: `{"confirm":""}`, valid: true, templateRefuses: true},
		{why: "confirm naming another data source", body: `{"confirm":"Other"}`, valid: true, templateRefuses: true},
		{why: "confirm with a quote", body: `{"confirm":"Stores\"_2024"}`, valid: true, templateRefuses: true},
		{why: "confirm equal to the name as percent-encoded in the path", body: `{"confirm":"Stores%5F2024"}`, valid: true, templateRefuses: true},
		{why: "a 50-character confirm", body: `{"confirm":"` + long("c", 50) + `"}`, valid: true, templateRefuses: true},
		{why: "no body (confirm missing)", body: ""},
		{why: "an empty object (confirm missing)", body: `{}`},
		{why: "confirm missing, other fields given", body: `{"isStaging":true,"backupFirst":true}`},
		{why: "a 51-character confirm (oversize)", body: `{"confirm":"` + long("c", 51) + `"}`},
		{why: "confirm null", body: `{"confirm":null}`},
		{why: "confirm a number", body: `{"confirm":1}`},
		{why: "confirm a boolean", body: `{"confirm":true}`},
		{why: "confirm an array", body: `{"confirm":["Stores_2024"]}`},
		{why: `isStaging the string "true"`, body: `{"confirm":"Stores_2024","isStaging":"true"}`},
		{why: `isStaging the string "false"`, body: `{"confirm":"Stores_2024","isStaging":"false"}`},
		{why: "isStaging 1", body: `{"confirm":"Stores_2024","isStaging":1}`},
		{why: "isStaging null", body: `{"confirm":"Stores_2024","isStaging":null}`},
		{why: "isStaging yes", body: `{"confirm":"Stores_2024","isStaging":"yes"}`},
		{why: "JSON injection in isStaging", body: `{"confirm":"Stores_2024","isStaging":"true,\"backupFirst\":true"}`},
		{why: `backupFirst the string "true"`, body: `{"confirm":"Stores_2024","backupFirst":"true"}`},
		{why: "backupFirst 0", body: `{"confirm":"Stores_2024","backupFirst":0}`},
		{why: "backupFirst null", body: `{"confirm":"Stores_2024","backupFirst":null}`},
		{why: "a secret id with a quote", body: `{"confirm":"Stores_2024","masterKeySecretId":"a\"b"}`},
		{why: "an extra field", body: `{"confirm":"Stores_2024","force":true}`},
		{why: "an array body", body: `[{"confirm":"Stores_2024"}]`},
		{why: "a string body", body: `"Stores_2024"`},
		{why: "a null body", body: `null`},
		{why: "a body that is not JSON", body: `confirm=Stores_2024`},
	},
	"POST /datasources/{accessId}/{name}/restores": {
		{why: "confirm only", body: `{"confirm":"Stores_2024"}`, valid: true},
		{why: "every field, into another name", body: `{"confirm":"Copy-1","targetName":"Copy-1","versionJobId":"J1","staging":true,"publish":true,"public":false,"force":false,"backupFirst":true,"masterKeySecretId":"sds/master"}`, valid: true},
		{why: "a date", body: `{"confirm":"Stores_2024","date":"2024-06-01"}`, valid: true},
		{why: "confirm naming the path's data source when the target is another", body: `{"confirm":"Stores_2024","targetName":"Copy"}`, valid: true, templateRefuses: true},
		{why: "confirm in another case than the name", body: `{"confirm":"stores_2024"}`, valid: true, templateRefuses: true},
		{why: "confirm empty", body: `{"confirm":""}`, valid: true, templateRefuses: true},
		{why: "no body (confirm missing)", body: ""},
		{why: "an empty object (confirm missing)", body: `{}`},
		{why: "a target name with a slash", body: `{"confirm":"a/b","targetName":"a/b"}`},
		{why: "a target name with a quote", body: `{"confirm":"a\"b","targetName":"a\"b"}`},
		{why: "a 51-character target name", body: `{"confirm":"Stores_2024","targetName":"` + long("t", 51) + `"}`},
		{why: "a date in another form", body: `{"confirm":"Stores_2024","date":"01/06/2024"}`},
		{why: "JSON injection in the date", body: `{"confirm":"Stores_2024","date":"2024-06-01\",\"force\":true"}`},
		{why: `force the string "true"`, body: `{"confirm":"Stores_2024","force":"true"}`},
		{why: "staging 1", body: `{"confirm":"Stores_2024","staging":1}`},
		{why: "backupFirst null", body: `{"confirm":"Stores_2024","backupFirst":null}`},
		{why: "a version id with a space", body: `{"confirm":"Stores_2024","versionJobId":"a b"}`},
		{why: "an archive key (not offered by the API)", body: `{"confirm":"Stores_2024","archiveKey":"sds-exports/x.xml"}`},
		{why: "an array body", body: `[{"confirm":"Stores_2024"}]`},
		{why: "a body that is not JSON", body: `confirm=Stores_2024`},
	},
	"POST /datasources/{accessId}/{name}/rollbacks": {
		{why: "job id and confirm", body: `{"jobId":"4ad48f44f879c6da79e22ecfd19ffad4","confirm":"Stores_2024"}`, valid: true},
		{why: "with a secret id", body: `{"jobId":"J1","confirm":"Stores_2024","masterKeySecretId":"sds/master"}`, valid: true},
		{why: "confirm naming another data source", body: `{"jobId":"J1","confirm":"Other"}`, valid: true, templateRefuses: true},
		{why: "confirm empty", body: `{"jobId":"J1","confirm":""}`, valid: true, templateRefuses: true},
		{why: "no job id", body: `{"confirm":"Stores_2024"}`},
		{why: "no confirm", body: `{"jobId":"J1"}`},
		{why: "an empty job id", body: `{"jobId":"","confirm":"Stores_2024"}`},
		{why: "a job id with a quote", body: `{"jobId":"a\"b","confirm":"Stores_2024"}`},
		{why: "JSON injection in the job id", body: `{"jobId":"J1\",\"x\":\"y","confirm":"Stores_2024"}`},
		{why: "a job id that is a number", body: `{"jobId":5,"confirm":"Stores_2024"}`},
		{why: "an extra field", body: `{"jobId":"J1","confirm":"Stores_2024","force":true}`},
		{why: "no body", body: ""},
		{why: "a body that is not JSON", body: `jobId=J1`},
	},
	"PUT /datasources/{accessId}/{name}/visibility": {
		{why: "public true", body: `{"public":true}`, valid: true},
		{why: "public false", body: `{"public":false}`, valid: true},
		{why: "public and a secret id", body: `{"public":true,"masterKeySecretId":"sds/master"}`, valid: true},
		{why: "no body (public missing)", body: ""},
		{why: "an empty object (public missing)", body: `{}`},
		{why: `public the string "true"`, body: `{"public":"true"}`},
		{why: `public the string "false"`, body: `{"public":"false"}`},
		{why: "public 1", body: `{"public":1}`},
		{why: "public 0", body: `{"public":0}`},
		{why: "public null", body: `{"public":null}`},
		{why: "public an array", body: `{"public":[true]}`},
		{why: "public an object", body: `{"public":{}}`},
		{why: "JSON injection in public", body: `{"public":"true,\"masterKeySecretId\":\"other\""}`},
		{why: "a field name in another case", body: `{"Public":true}`},
		{why: "an extra field", body: `{"public":true,"recursive":true}`},
		{why: "a secret id with a space", body: `{"public":true,"masterKeySecretId":"a b"}`},
		{why: "a 2049-character secret id (oversize)", body: `{"public":true,"masterKeySecretId":"` + long("s", 2049) + `"}`},
		{why: "an array body", body: `[]`},
		{why: "a boolean body", body: `true`},
		{why: "a string body", body: `"true"`},
		{why: "a body that is not JSON", body: `public=true`},
	},
}

// TestAPIRequestModels validates request bodies against each route's model
// with a real draft-04 validator, as API Gateway's request validator does.
func TestAPIRequestModels(t *testing.T) {
	routes, defs := apiDefinition(t)
	var cases []modelCase
	var where []string
	var want []bodyCase
	for _, sr := range startRoutes {
		r := routes[sr.key]
		if r == nil || r.model == "" {
			t.Fatalf("%s: no route with a body model (see TestAPIRoutesValidateBeforeStarting)", sr.key)
		}
		for _, c := range bodyCases[sr.key] {
			cases = append(cases, modelCase{Model: r.model, Body: c.body})
			where = append(where, sr.key+" (model "+r.model+")")
			want = append(want, c)
		}
	}
	for i, res := range validateModels(t, defs, cases) {
		c := want[i]
		switch {
		case c.valid && !res.Valid:
			t.Errorf("%s: body %s (%s) was refused: %v; want it accepted", where[i], shown(c.body), c.why, res.Errors)
		case !c.valid && res.Valid:
			t.Errorf("%s: body %s (%s) was accepted; want it refused", where[i], shown(c.body), c.why)
		}
	}
}

// TestAPIRequestTemplatesCheckBodies renders each route's request template
// for the bodies of TestAPIRequestModels, with valid path parameters. A
// body the model accepts must start an execution whose input is exactly
// the path's data source plus the body's fields (or be refused, where the
// template has a check of its own: confirm). A body the model refuses never
// reaches the template; should it, the template must refuse it or pass on
// only what the model would have accepted.
func TestAPIRequestTemplatesCheckBodies(t *testing.T) {
	routes, defs := apiDefinition(t)
	type item struct {
		sr startRoute
		c  bodyCase
	}
	var items []item
	var cases []vtlCase
	for _, sr := range startRoutes {
		for _, c := range bodyCases[sr.key] {
			items = append(items, item{sr, c})
			cases = append(cases, vtlCase{Template: routes[sr.key].template, Path: map[string]string{"accessId": okAccessID, "name": okName}, Body: c.body})
		}
	}
	results := renderTemplates(t, cases)
	// Inputs started from bodies the model refuses: their body fields are
	// checked against the model afterwards.
	var recheck []modelCase
	var recheckWhat []string
	for i, res := range results {
		it := items[i]
		what := fmt.Sprintf("%s with body %s (%s)", it.sr.key, shown(it.c.body), it.c.why)
		if res.HarnessError != "" {
			t.Errorf("%s: the harness could not render the template: %s", what, res.HarnessError)
			continue
		}
		o := startExecution(res, stateMachineArn(it.sr.machine))
		if o.problem != "" {
			t.Errorf("%s: %s", what, o.problem)
			continue
		}
		if it.c.valid && !it.c.templateRefuses {
			want := map[string]any{"accessId": okAccessID, "dataSourceName": okName}
			if v, err := strictJSON(strings.TrimSpace(it.c.body)); err == nil && v != nil {
				for k, fv := range obj(v) {
					want[k] = fv
				}
			}
			switch {
			case o.refused:
				t.Errorf("%s: the template refused it; want an execution with input %s", what, compactJSON(want))
			case !sameJSON(o.input, want):
				t.Errorf("%s: execution input %s, want exactly %s", what, compactJSON(o.input), compactJSON(want))
			}
			continue
		}
		if o.refused {
			continue
		}
		if it.c.templateRefuses {
			t.Errorf("%s: the template started an execution with input %s; want it refused (confirm must equal the data source name)", what, compactJSON(o.input))
			continue
		}
		if o.input["accessId"] != okAccessID || o.input["dataSourceName"] != okName {
			t.Errorf("%s: execution input %s does not name the path's data source %s/%s", what, compactJSON(o.input), okAccessID, okName)
			continue
		}
		fields := map[string]any{}
		for k, v := range o.input {
			if k != "accessId" && k != "dataSourceName" {
				fields[k] = v
			}
		}
		recheck = append(recheck, modelCase{Model: routes[it.sr.key].model, Body: compactJSON(fields)})
		recheckWhat = append(recheckWhat, fmt.Sprintf("%s: the model refuses this body, and the template turned it into execution input %s", what, compactJSON(o.input)))
	}
	if len(recheck) > 0 {
		for i, res := range validateModels(t, defs, recheck) {
			if !res.Valid {
				t.Errorf("%s, whose fields the model refuses too: %v", recheckWhat[i], res.Errors)
			}
		}
	}
}

// pathCase is a path parameter value as the client sends it in the URL.
// Values with raw characters a URL cannot carry (space, quote, control
// characters, ? and #) stand for what a lenient front end might pass on;
// raw bytes that are not UTF-8 reach the harness as U+FFFD (JSON carries
// the cases), as they would reach a Java String.
type pathCase struct {
	why   string
	value string
	// orStartsAs: besides a refusal, starting an execution for this data
	// source name is acceptable (see the double-encoding case).
	orStartsAs string
}

// badPathValues are refused as accessId and as name.
var badPathValues = []pathCase{
	{why: "empty", value: ""},
	{why: "a slash", value: "ab/cd"},
	{why: "a percent-encoded slash", value: "ab%2Fcd"},
	{why: "a percent-encoded slash, lower case", value: "ab%2fcd"},
	{why: "dot-dot", value: ".."},
	{why: "percent-encoded dot-dot", value: "%2E%2E"},
	{why: "percent-encoded ../ traversal", value: "%2E%2E%2FOther"},
	{why: "a dot", value: "a.b"},
	{why: "a question mark", value: "ab?cd"},
	{why: "a percent-encoded question mark", value: "ab%3Fcd"},
	{why: "a hash", value: "ab#cd"},
	{why: "a percent-encoded hash", value: "ab%23cd"},
	{why: "a space", value: "ab cd"},
	{why: "a percent-encoded space", value: "ab%20cd"},
	{why: "a plus (a space to a form decoder)", value: "ab+cd"},
	{why: "a plus next to an escape", value: "ab+c%64"},
	{why: "a NUL", value: "ab\x00cd"},
	{why: "a percent-encoded NUL", value: "ab%00cd"},
	{why: "a tab", value: "ab\tcd"},
	{why: "a trailing newline", value: "abcd\n"},
	{why: "a percent-encoded trailing newline", value: "abcd%0A"},
	{why: "a percent-encoded carriage return and line feed", value: "ab%0D%0Acd"},
	{why: "a percent-encoded DEL", value: "ab%7Fcd"},
	{why: "a percent-encoded C1 control (NEL)", value: "ab%C2%85cd"},
	{why: "a percent-encoded zero-width space", value: "ab%E2%80%8Bcd"},
	{why: "a percent-encoded line separator U+2028", value: "ab%E2%80%A8cd"},
	{why: "a percent-encoded byte order mark", value: "%EF%BB%BFabcd"},
	{why: "non-UTF-8: a lone percent-encoded byte FF", value: "ab%FFcd"},
	{why: "non-UTF-8: a truncated sequence", value: "ab%C3cd"},
	{why: "non-UTF-8: an overlong slash", value: "ab%C0%AFcd"},
	{why: "non-UTF-8: raw bytes", value: "ab\xff\xfecd"},
	{why: "a non-ASCII letter", value: "abcé"},
	{why: "a percent-encoded non-ASCII letter", value: "abc%C3%A9"},
	{why: "fullwidth letters", value: "ａｂｃ"},
	{why: "a quote", value: `ab"cd`},
	{why: "a percent-encoded quote", value: "ab%22cd"},
	{why: "a backslash", value: `ab\cd`},
	{why: "a percent-encoded backslash", value: "ab%5Ccd"},
	{why: "a percent-encoded backslash and u (a JSON escape)", value: "ab%5Cu0022cd"},
	{why: "JSON injection of another field", value: `x","dataSourceName":"Other","public":true,"x":"`},
	{why: "percent-encoded JSON injection", value: "x%22%2C%22dataSourceName%22%3A%22Other"},
	{why: "JSON injection that closes the input", value: "x%22%7D%22%2C%22name%22%3A%22y"},
	{why: "a Velocity reference", value: "%24%7Binput.body%7D%23set(%24x%3D1)"},
	{why: "a lone percent", value: "ab%"},
	{why: "a truncated escape", value: "ab%2"},
	{why: "a non-hex escape", value: "ab%G1cd"},
	{why: "a signed escape (Java reads %+1 as byte 1)", value: "ab%+1cd"},
	{why: "a negative escape", value: "ab%-1cd"},
	{why: "a signed zero escape (Java reads %-0 as NUL)", value: "ab%-0cd"},
	{why: "a percent-encoded percent", value: "ab%25cd"},
	{why: "double-encoded: %2541 is %41 once decoded, A twice", value: "%2541", orStartsAs: "A"},
}

// TestAPIRequestTemplatesRefuseBadPaths renders each start route's
// template for malformed accessId and name values, each as sent and as
// API Gateway might have percent-decoded it: every one must be refused.
func TestAPIRequestTemplatesRefuseBadPaths(t *testing.T) {
	routes, _ := apiDefinition(t)
	type item struct {
		sr    startRoute
		param string
		pc    pathCase
		mode  string
	}
	var items []item
	var cases []vtlCase
	add := func(sr startRoute, param string, pc pathCase) {
		for _, m := range pathModes {
			path := map[string]string{"accessId": okAccessID, "name": okName}
			path[param] = m.decode(pc.value)
			// The body names the data source the way the caller meant it,
			// so that only the path check can refuse the request.
			body, _ := sr.body(percentDecode(path["name"]))
			items = append(items, item{sr, param, pc, m.name})
			cases = append(cases, vtlCase{Template: routes[sr.key].template, Path: path, Body: body})
		}
	}
	for _, sr := range startRoutes {
		for _, pc := range append([]pathCase{{why: "65 characters", value: long("a", 65)}}, badPathValues...) {
			add(sr, "accessId", pc)
		}
		for _, pc := range append([]pathCase{
			{why: "51 characters", value: long("a", 51)},
			{why: "51 characters once decoded", value: long("%7B", 51)},
		}, badPathValues...) {
			add(sr, "name", pc)
		}
	}
	results := renderTemplates(t, cases)
	refusal := map[string]string{}
	byName, byException := 0, 0
	defer func() {
		t.Logf("%d requests: %d refused with an invalid execution name (400), %d by a template exception (500)", len(cases), byName, byException)
	}()
	for i, res := range results {
		it := items[i]
		what := fmt.Sprintf("%s with %s %s (%s), path parameters %s", it.sr.key, it.param, shown(it.pc.value), it.pc.why, it.mode)
		if res.HarnessError != "" {
			t.Errorf("%s: the harness could not render the template: %s", what, res.HarnessError)
			continue
		}
		o := startExecution(res, stateMachineArn(it.sr.machine))
		switch {
		case o.problem != "":
			t.Errorf("%s: %s", what, o.problem)
		case !o.refused:
			if it.pc.orStartsAs != "" && o.input["dataSourceName"] == it.pc.orStartsAs && o.input["accessId"] == okAccessID {
				continue
			}
			t.Errorf("%s: the template would start an execution with input %s; want the request refused", what, compactJSON(o.input))
		case res.Exception != "":
			byException++
		default:
			byName++
			// All refusals of a route must look the same: nothing of the
			// request may leak into them.
			if prev, ok := refusal[it.sr.key]; ok && prev != o.refusalName {
				t.Errorf("%s: refused with execution name %q, other refusals use %q; the refusal must not depend on the request", what, o.refusalName, prev)
			}
			refusal[it.sr.key] = o.refusalName
		}
	}
}

// TestAPIRequestTemplatesStartExecutions renders each start route's
// template for valid path parameters: each must start an execution of the
// route's state machine with exactly the expected input.
func TestAPIRequestTemplatesStartExecutions(t *testing.T) {
	routes, _ := apiDefinition(t)
	valid := []struct {
		why            string
		accessID, name string // as sent
		wantName       string
	}{
		{"plain", okAccessID, okName, okName},
		{"the longest accessId and name", long("A", 32) + long("9", 32), long("z", 50), long("z", 50)},
		{"one-character accessId and name", "a", "b", "b"},
		{"every special character of a name, percent-encoded", okAccessID, "a~%60!%24%5E_%3D%7B%7D", "a~`!$^_={}"},
		{"every special character of a name, lower-case escapes", okAccessID, "a~%60!%24%5e_%3d%7b%7d", "a~`!$^_={}"},
		{"every special character of a name, as some clients send them", okAccessID, "a~`!$^_={}", "a~`!$^_={}"},
		{"a name that looks like a Velocity reference", okAccessID, "$input{}", "$input{}"},
		{"percent-encoded letters", okAccessID, "%53tores", "Stores"},
		{"a name with a hyphen, as Microsoft's own client accepts", okAccessID, "Stores-2019", "Stores-2019"},
		{"a 50-character name sent as 150 characters", okAccessID, long("%7B", 50), long("{", 50)},
	}
	type item struct {
		sr   startRoute
		why  string
		mode string
		want map[string]any
	}
	var items []item
	var cases []vtlCase
	for _, sr := range startRoutes {
		for _, v := range valid {
			for _, m := range pathModes {
				body, fields := sr.body(v.wantName)
				want := map[string]any{"accessId": v.accessID, "dataSourceName": v.wantName}
				for k, f := range fields {
					want[k] = f
				}
				items = append(items, item{sr, fmt.Sprintf("accessId %q, name %q (%s)", v.accessID, v.name, v.why), m.name, want})
				cases = append(cases, vtlCase{Template: routes[sr.key].template, Path: map[string]string{"accessId": m.decode(v.accessID), "name": m.decode(v.name)}, Body: body})
			}
		}
	}
	for i, res := range renderTemplates(t, cases) {
		it := items[i]
		what := fmt.Sprintf("%s with %s, path parameters %s", it.sr.key, it.why, it.mode)
		if res.HarnessError != "" {
			t.Errorf("%s: the harness could not render the template: %s", what, res.HarnessError)
			continue
		}
		o := startExecution(res, stateMachineArn(it.sr.machine))
		switch {
		case o.problem != "":
			t.Errorf("%s: %s", what, o.problem)
		case o.refused:
			t.Errorf("%s: refused (%s%s); want an execution with input %s", what, res.Exception, o.refusalName, compactJSON(it.want))
		case !sameJSON(o.input, it.want):
			t.Errorf("%s: execution input %s, want exactly %s", what, compactJSON(o.input), compactJSON(it.want))
		}
	}
}

// TestAPIExecutionStatusTemplate renders GET /executions/{id}'s template:
// an execution ARN, raw or percent-encoded, becomes a DescribeExecution
// request for exactly that ARN; anything else is refused with a fixed
// non-ARN, which Step Functions answers with InvalidArn (400).
func TestAPIExecutionStatusTemplate(t *testing.T) {
	routes, _ := apiDefinition(t)
	r := routes[executionStatusRoute]
	if r == nil || r.template == "" {
		t.Fatalf("%s: no such route with a request template", executionStatusRoute)
	}
	const prefix = "arn:aws:states:us-east-1:123456789012:execution:sdsops-BackupStateMachine:"
	const uuid = "6f1d3c2e-8a4b-4f0e-9c7d-2b1a0e9f8d7c"
	arn := prefix + uuid
	cases := []struct {
		why  string
		id   string // as sent
		want string // the ARN to describe; "" refused
	}{
		{"an execution ARN", arn, arn},
		{"an execution ARN, every colon encoded", strings.ReplaceAll(arn, ":", "%3A"), arn},
		{"an execution ARN, lower-case escapes", strings.ReplaceAll(arn, ":", "%3a"), arn},
		{"another partition and region", "arn:aws-cn:states:cn-north-1:123456789012:execution:sm:" + uuid, "arn:aws-cn:states:cn-north-1:123456789012:execution:sm:" + uuid},
		{"an 80-character execution name", prefix + long("e", 80), prefix + long("e", 80)},
		{"an 80-character state machine name", "arn:aws:states:us-east-1:123456789012:execution:" + long("m", 80) + ":" + uuid, "arn:aws:states:us-east-1:123456789012:execution:" + long("m", 80) + ":" + uuid},
		{"empty", "", ""},
		{"not an ARN", "abc", ""},
		{"a state machine ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:sdsops-BackupStateMachine", ""},
		{"an 11-digit account", "arn:aws:states:us-east-1:12345678901:execution:sm:" + uuid, ""},
		{"an 81-character execution name", prefix + long("e", 81), ""},
		{"an 81-character state machine name", "arn:aws:states:us-east-1:123456789012:execution:" + long("m", 81) + ":" + uuid, ""},
		{"an extra colon", arn + ":x", ""},
		{"a quote", arn + `"`, ""},
		{"a percent-encoded quote", arn + "%22", ""},
		{"a backslash", arn + `\`, ""},
		{"a percent-encoded backslash", arn + "%5C", ""},
		{"JSON injection", arn + `","includedData":"METADATA_ONLY`, ""},
		{"percent-encoded JSON injection", arn + "%22%2C%22includedData%22%3A%22METADATA_ONLY", ""},
		{"a space", prefix + "a b", ""},
		{"a percent-encoded space", prefix + "a%20b", ""},
		{"a tab", prefix + "a\tb", ""},
		{"a percent-encoded trailing newline", arn + "%0A", ""},
		{"a trailing newline", arn + "\n", ""},
		{"a percent-encoded NUL", prefix + "a%00b", ""},
		{"a percent-encoded control character", prefix + "a%01b", ""},
		{"a percent-encoded escape character", prefix + "a%1Bb", ""},
		{"a percent-encoded DEL", prefix + "a%7Fb", ""},
		{"a percent-encoded C1 control (NEL)", prefix + "a%C2%85b", ""},
		{"a Java signed escape (%+1 is byte 1)", prefix + "a%+1b", ""},
		{"a lone percent", prefix + "a%", ""},
		{"a non-hex escape", prefix + "a%G1", ""},
	}
	type item struct {
		why, mode, want string
	}
	var items []item
	var vcases []vtlCase
	for _, c := range cases {
		for _, m := range pathModes {
			items = append(items, item{fmt.Sprintf("id %s (%s)", shown(c.id), c.why), m.name, c.want})
			vcases = append(vcases, vtlCase{Template: r.template, Path: map[string]string{"id": m.decode(c.id)}})
		}
	}
	for i, res := range renderTemplates(t, vcases) {
		it := items[i]
		what := fmt.Sprintf("%s with %s, path parameters %s", executionStatusRoute, it.why, it.mode)
		if res.HarnessError != "" {
			t.Errorf("%s: the harness could not render the template: %s", what, res.HarnessError)
			continue
		}
		if res.Exception != "" {
			if it.want != "" {
				t.Errorf("%s: the template threw %s; want DescribeExecution of %s", what, res.Exception, it.want)
			}
			continue
		}
		v, err := strictJSON(res.Output)
		req := obj(v)
		if err != nil || req == nil {
			t.Errorf("%s: the rendered DescribeExecution request is not a JSON object (%v): %s", what, err, printable(res.Output))
			continue
		}
		for k := range req {
			if k != "executionArn" {
				t.Errorf("%s: the rendered DescribeExecution request has a field %q: %s", what, k, res.Output)
			}
		}
		got, _ := req["executionArn"].(string)
		isArn := strings.HasPrefix(got, "arn:")
		switch {
		case it.want == "" && isArn:
			t.Errorf("%s: the template asks DescribeExecution for %q; want the request refused", what, got)
		case it.want == "" && got == "":
			t.Errorf("%s: refused with an empty executionArn; want a fixed non-ARN", what)
		case it.want != "" && got != it.want:
			t.Errorf("%s: executionArn %q, want %q", what, got, it.want)
		}
	}
}

// TestAPIResponseTemplates renders the integration response templates for
// Step Functions answers: every one must be JSON carrying the answer's
// data unchanged, with the status API Gateway should return.
func TestAPIResponseTemplates(t *testing.T) {
	routes, _ := apiDefinition(t)
	ctx := map[string]any{"stage": testStage, "requestId": "c0ffee00-0000-4000-8000-000000000000"}
	tricky := "it's \"quoted\", back\\slash \\' and / slash\nnew line\ttab é ✓ </script> \u2028 end"
	type check func(out map[string]any, override map[string]any) string
	type rcase struct {
		route, sel, why, body string
		check                 check
	}
	field := func(k, want string) check {
		return func(out, _ map[string]any) string {
			if out[k] != want {
				return fmt.Sprintf("%s is %q, want %q", k, out[k], want)
			}
			return ""
		}
	}
	status := func(want any, then check) check {
		return func(out, ov map[string]any) string {
			got := any(nil)
			if ov != nil {
				got = ov["status"]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Sprintf("status override %v, want %v", got, want)
			}
			return then(out, ov)
		}
	}
	var cases []rcase
	for _, k := range sortedRouteKeys(routes) {
		cases = append(cases,
			rcase{k, `4\d{2}`, "a refused request (InvalidName)",
				`{"__type":"com.amazonaws.swf.service.v2.model#InvalidName","message":"Invalid Name: 'request refused: invalid accessId, name or body'"}`,
				status(nil, field("error", "InvalidRequest"))},
			rcase{k, `4\d{2}`, "access denied",
				`{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized"}`,
				status(403, field("error", "AccessDeniedException"))},
			rcase{k, `4\d{2}`, "a message with quotes, backslashes, controls and non-ASCII",
				`{"__type":"ValidationException","message":` + compactJSON(tricky) + `}`,
				status(nil, field("message", tricky))},
			rcase{k, `4\d{2}`, "an empty answer", ``, status(nil, field("error", ""))},
			rcase{k, `5\d{2}`, "a Step Functions failure", `{"__type":"InternalFailure"}`, field("error", "StepFunctionsUnavailable")},
		)
	}
	execArn := "arn:aws:states:us-east-1:123456789012:execution:sdsops-BackupStateMachine:6f1d3c2e-8a4b-4f0e-9c7d-2b1a0e9f8d7c"
	for _, sr := range startRoutes {
		cases = append(cases, rcase{sr.key, "default", "an execution started",
			`{"executionArn":"` + execArn + `","startDate":1.700000000123E9}`,
			func(out, _ map[string]any) string {
				if out["executionArn"] != execArn || out["statusPath"] != "/"+testStage+"/executions/"+execArn {
					return fmt.Sprintf("executionArn %v, statusPath %v; want %s and /%s/executions/%s", out["executionArn"], out["statusPath"], execArn, testStage, execArn)
				}
				if _, ok := out["startDate"].(json.Number); !ok {
					return fmt.Sprintf("startDate %v is not a number", out["startDate"])
				}
				return ""
			}})
	}
	output := `{"archived":3,"key":"a \"quoted\" key\\n","list":[1,{"x":null}]}`
	cases = append(cases,
		// Only DescribeExecution answers ExecutionDoesNotExist.
		rcase{executionStatusRoute, `4\d{2}`, "no such execution",
			`{"__type":"com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist","message":"Execution Does Not Exist: 'arn:aws:states:us-east-1:123456789012:execution:sm:x'"}`,
			status(404, field("message", "Execution Does Not Exist: 'arn:aws:states:us-east-1:123456789012:execution:sm:x'"))},
		rcase{executionStatusRoute, "default", "a succeeded execution",
			`{"executionArn":"` + execArn + `","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:sm","status":"SUCCEEDED","startDate":1.7E9,"stopDate":1.7000001E9,"output":` + compactJSON(output) + `}`,
			func(out, _ map[string]any) string {
				var want any
				_ = json.Unmarshal([]byte(output), &want)
				if !sameJSON(out["output"], want) || out["status"] != "SUCCEEDED" || out["error"] != nil || out["cause"] != nil || out["stopDate"] == nil {
					return fmt.Sprintf("got %s; want the output %s, status SUCCEEDED, a stopDate, no error or cause", compactJSON(out), output)
				}
				return ""
			}},
		rcase{executionStatusRoute, "default", "a running execution",
			`{"executionArn":"` + execArn + `","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:sm","status":"RUNNING","startDate":1.7E9}`,
			func(out, _ map[string]any) string {
				if out["status"] != "RUNNING" || out["output"] != nil || out["stopDate"] != nil || out["error"] != nil {
					return fmt.Sprintf("got %s; want status RUNNING and null output, stopDate, error", compactJSON(out))
				}
				return ""
			}},
		rcase{executionStatusRoute, "default", "a failed execution",
			`{"executionArn":"` + execArn + `","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:sm","status":"FAILED","startDate":1.7E9,"stopDate":1.7E9,"error":"States.TaskFailed","cause":` + compactJSON(tricky) + `}`,
			func(out, _ map[string]any) string {
				if out["status"] != "FAILED" || out["error"] != "States.TaskFailed" || out["cause"] != tricky {
					return fmt.Sprintf("got %s; want status FAILED, error States.TaskFailed and the cause unchanged", compactJSON(out))
				}
				return ""
			}},
	)
	var vcases []vtlCase
	for _, c := range cases {
		tmpl, ok := routes[c.route].responses[c.sel]
		if !ok {
			t.Fatalf("%s: no %s integration response template", c.route, c.sel)
		}
		vcases = append(vcases, vtlCase{Template: tmpl, Body: c.body, Context: ctx})
	}
	for i, res := range renderTemplates(t, vcases) {
		c := cases[i]
		what := fmt.Sprintf("%s, response %s, for %s", c.route, c.sel, c.why)
		if res.HarnessError != "" || res.Exception != "" {
			t.Errorf("%s: the template could not be rendered: %s%s", what, res.HarnessError, res.Exception)
			continue
		}
		v, err := strictJSON(res.Output)
		if err != nil || obj(v) == nil {
			t.Errorf("%s: the response is not a JSON object (%v): %s", what, err, printable(res.Output))
			continue
		}
		if msg := c.check(obj(v), res.ResponseOverride); msg != "" {
			t.Errorf("%s: %s; response: %s", what, msg, res.Output)
		}
	}
}
