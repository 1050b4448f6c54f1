package templatecheck

import (
	"strings"
	"testing"
)

// The one HTTP API is the Query API. It is public by design (the function
// checks the SDS keys against their hashes), so it must route only the
// Query API's paths, through its $default stage (no stage prefix in the
// paths), throttled, with an access log that leaves out query strings,
// which carry keys.
func TestQueryAPIIsTheOnlyPublicAPI(t *testing.T) {
	_, tp := load(t)
	apis := tp.ofType("AWS::ApiGatewayV2::Api")
	if len(apis) != 1 {
		t.Fatalf("%d HTTP APIs, want exactly the Query API", len(apis))
	}
	for id, api := range apis {
		body := obj(api.Properties["Body"])
		if body == nil {
			t.Fatalf("HTTP API %s has no inline Body; its routes cannot be checked", id)
		}
		paths := obj(body["paths"])
		if len(paths) == 0 {
			t.Errorf("HTTP API %s has no routes", id)
		}
		for path := range paths {
			if path != "/REST/v1/data/{proxy+}" {
				t.Errorf("HTTP API %s routes %s: only the Query API's paths may be public", id, path)
			}
		}
	}
	stages := tp.ofType("AWS::ApiGatewayV2::Stage")
	if len(stages) == 0 {
		t.Fatal("the Query API has no stage")
	}
	for id, st := range stages {
		if name := str(st.Properties["StageName"]); name != "$default" {
			t.Errorf("stage %s: StageName %q, want $default (a named stage prefixes every path)", id, name)
		}
		rs := obj(st.Properties["DefaultRouteSettings"])
		if rs["ThrottlingRateLimit"] == nil || rs["ThrottlingBurstLimit"] == nil {
			t.Errorf("stage %s is not throttled: %v", id, rs)
		}
		format := str(obj(st.Properties["AccessLogSettings"])["Format"])
		if format == "" {
			t.Errorf("stage %s has no access log", id)
		}
		for _, v := range []string{"querystring", "$context.identity", "$request"} {
			if strings.Contains(strings.ToLower(format), strings.ToLower(v)) {
				t.Errorf("stage %s: the access log format uses %s, which may carry a key", id, v)
			}
		}
	}
}
