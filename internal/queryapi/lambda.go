package queryapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Lambda adapts an http.Handler to an API Gateway HTTP API (payload 2.0)
// behind the $default stage, whose paths are the request's own: the SDS
// paths arrive unchanged, so an application changes only its host.
func Lambda(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		target := ev.RawPath
		if ev.RawQueryString != "" {
			target += "?" + ev.RawQueryString
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"} // answered as a path that is not the Query API's
		}
		req := (&http.Request{Method: ev.RequestContext.HTTP.Method, URL: u, Header: http.Header{}, Host: ev.RequestContext.DomainName}).WithContext(ctx)
		for k, v := range ev.Headers {
			req.Header.Set(k, v)
		}
		if host := req.Header.Get("Host"); host != "" {
			req.Host = host
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		resp := events.APIGatewayV2HTTPResponse{StatusCode: w.Code, Headers: map[string]string{}, Body: w.Body.String()}
		for k, v := range w.Header() {
			resp.Headers[k] = strings.Join(v, ", ")
		}
		return resp, nil
	}
}
