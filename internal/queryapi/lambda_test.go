package queryapi

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sdsops/sdsops/internal/query/querytest"
)

func TestLambdaAdapter(t *testing.T) {
	srv, _ := newServer(t)
	fn := Lambda(srv.Config.Handler)
	ev := events.APIGatewayV2HTTPRequest{
		RawPath:        "/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/" + querytest.EntityType + "('-22067')",
		RawQueryString: "$select=Name&$format=json&key=" + accountKey,
		Headers:        map[string]string{"host": "query.example.com", "x-forwarded-proto": "https"},
	}
	ev.RequestContext.HTTP.Method = "GET"
	resp, err := fn(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `"uri":"https://query.example.com/REST/v1/data/` + querytest.AccessID + `/` + querytest.Name + `/` + querytest.EntityType + `('-22067')"`
	if resp.StatusCode != 200 || !strings.Contains(resp.Body, want) || !strings.HasPrefix(resp.Headers["Content-Type"], "application/json") {
		t.Errorf("%d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	ev.RawPath = "/nope"
	if resp, _ := fn(context.Background(), ev); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestParseKeys(t *testing.T) {
	h := HashKey("k1")
	hx := hex.EncodeToString(h[:])
	k, err := ParseKeys([]byte(`{"accountKeyHashes":["` + hx + `"],"queryKeyHashes":{"ABC/Coffee":"` + strings.ToUpper(hx) + `"}}`))
	if err != nil || len(k.Account) != 1 || k.Account[0] != h || k.Query["abc/coffee"] != h {
		t.Errorf("%+v %v", k, err)
	}
	for _, doc := range []string{`{"accountKeyHashes":["k1"]}`, `{"masterKeyHashes":["` + hx[:10] + `"]}`, `{}`, `not json`} {
		_, err := ParseKeys([]byte(doc))
		if err == nil {
			t.Errorf("%s accepted", doc)
		} else if strings.Contains(err.Error(), "k1") {
			t.Errorf("the error repeats a key: %v", err)
		}
	}
}
