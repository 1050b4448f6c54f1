package sds

import (
	"regexp"
	"strings"
	"testing"
)

// TestTotalGivenOrNot: a job total of 0 is a count (an empty data source);
// an absent, empty, null or nil total is none.
func TestTotalGivenOrNot(t *testing.T) {
	jsonBody := string(readExample(t, "get-download-data-source-job-status-2.json"))
	xmlBody := string(readExample(t, "get-download-data-source-job-status-1.xml"))
	const jsonTotal, xmlTotal = `"totalEntityCount":300`, `<TotalEntityCount>300</TotalEntityCount>`
	if !strings.Contains(jsonBody, jsonTotal) || !strings.Contains(xmlBody, xmlTotal) {
		t.Fatal("the examples no longer hold a total of 300")
	}
	tests := []struct {
		name, body string
		total      int64
		given      bool
	}{
		{"json 300", jsonBody, 300, true},
		{"json 0", strings.Replace(jsonBody, jsonTotal, `"totalEntityCount":0`, 1), 0, true},
		{"json quoted 0", strings.Replace(jsonBody, jsonTotal, `"totalEntityCount":"0"`, 1), 0, true},
		{"json null", strings.Replace(jsonBody, jsonTotal, `"totalEntityCount":null`, 1), 0, false},
		{"json empty", strings.Replace(jsonBody, jsonTotal, `"totalEntityCount":""`, 1), 0, false},
		{"json absent", regexp.MustCompile(`,\s*`+jsonTotal).ReplaceAllString(jsonBody, ""), 0, false},
		{"xml 300", xmlBody, 300, true},
		{"xml 0", strings.Replace(xmlBody, xmlTotal, `<TotalEntityCount>0</TotalEntityCount>`, 1), 0, true},
		{"xml empty", strings.Replace(xmlBody, xmlTotal, `<TotalEntityCount></TotalEntityCount>`, 1), 0, false},
		{"xml nil", strings.Replace(xmlBody, xmlTotal, `<TotalEntityCount xsi:nil="true" />`, 1), 0, false},
		{"xml absent", strings.Replace(xmlBody, xmlTotal, "", 1), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := DecodeResponse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Jobs) != 1 {
				t.Fatalf("%d jobs", len(resp.Jobs))
			}
			if j := resp.Jobs[0]; j.TotalEntityCount != tt.total || j.HasTotal != tt.given {
				t.Errorf("total %d given %v, want %d %v", j.TotalEntityCount, j.HasTotal, tt.total, tt.given)
			}
		})
	}
}
