package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/query"
	"github.com/sdsops/sdsops/internal/query/querytest"
	"github.com/sdsops/sdsops/internal/queryapi"
)

func serve(t *testing.T, export string) string {
	t.Helper()
	tb, err := query.DataSetLoader{}.Load(context.Background(), strings.NewReader(export))
	if err != nil {
		t.Fatal(err)
	}
	srcs := &queryapi.Sources{}
	srcs.Put(&queryapi.Source{AccessID: querytest.AccessID, Name: querytest.Name, Published: tb})
	srv := httptest.NewServer(&queryapi.Handler{Catalog: srcs, AccountKeys: [][32]byte{queryapi.HashKey("k-secret")}})
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRun(t *testing.T) {
	sds := serve(t, querytest.CoffeeShops())
	ops := serve(t, strings.Replace(querytest.CoffeeShops(), "Løven", "Loeven", 1))
	urls := "# from the access log\n" +
		"https://spatial.virtualearth.net/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/" + querytest.EntityType + "('-22067')?$format=json&key=k-secret\n" +
		"/REST/v1/data/" + querytest.AccessID + "/" + querytest.Name + "/" + querytest.EntityType + "?spatialFilter=bbox(40.78,-74.47,40.89,-74.16)&$top=3&key=k-secret\n"
	var out, errOut bytes.Buffer
	code := run([]string{"-sds", sds, "-sdsops", ops, "-rate", "100"}, strings.NewReader(urls), &out, &errOut)
	if code != 1 {
		t.Errorf("exit %d, want 1 (a difference): %s %s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"DIFFERS", `AddressLine: SDS "Løven", sdsops "Loeven"`, "same     200", "2 requests, 1 alike, 1 differ", "key=REDACTED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errOut.String(), "k-secret") {
		t.Error("the key is printed")
	}
	if code := run([]string{"-sds", sds}, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Errorf("without -sdsops: exit %d, want 2", code)
	}
}
