package queryapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/query/querytest"
)

// Whatever the path and query string, the handler answers 200 or a 4xx:
// never a 5xx, which would mean a panic or a bug on bad input.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{
		"FourthCoffeeShops?spatialFilter=nearby(40.8,-74.3,5)&$select=*,__Distance&$format=json&jsonp=cb&jsonso=x",
		"FourthCoffeeShops('-22067')?$select=Name,Open&$format=json",
		"FourthCoffeeShops?$filter=entityId%20in%20('-22067')&$inlinecount=allpages",
		"FourthCoffeeShops?spatialFilter=intersects('POLYGON((9 57,10 57,10 56,9 56,9 57))')&$select=intersection('POLYGON((9 57,10 57,10 56,9 56,9 57))')",
	} {
		f.Add(s)
	}
	srv, _ := newServer(f)
	h := srv.Config.Handler
	base := "/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/"
	f.Fuzz(func(t *testing.T, tail string) {
		if strings.ContainsAny(tail, " \r\n\t#") {
			return // not a request line
		}
		sep := "?"
		if strings.Contains(tail, "?") {
			sep = "&"
		}
		req, err := http.NewRequest(http.MethodGet, "http://example.com"+base+tail+sep+"key="+accountKey, nil)
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s: %d %s", tail, w.Code, w.Body.String())
		}
	})
}
