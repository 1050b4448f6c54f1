package sds

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// hostileAttrs and hostileJSON are answers just under maxResponseBytes of
// millions of attributes or array elements.
func hostileAttrs() []byte {
	return []byte(`<Response x="` + "\"" + strings.Repeat(` a=""`, (maxResponseBytes-100)/5) + `/>`)
}

func hostileJSON() []byte {
	return []byte(`{"statusCode":200,"errorDetails":[` + strings.Repeat(`"",`, (maxResponseBytes-100)/3) + `""]}`)
}

// hostileXML builds answers just under maxResponseBytes: one with millions
// of sibling elements, one nested as deep as the bytes allow.
func hostileXML(nested bool) []byte {
	var b bytes.Buffer
	b.WriteString(`<Response xmlns="http://schemas.microsoft.com/search/local/ws/rest/v1"><ErrorDetails>`)
	budget := maxResponseBytes - 200
	if nested {
		n := budget / 7 // "<a>" + "</a>"
		b.WriteString(strings.Repeat("<a>", n))
		b.WriteString(strings.Repeat("</a>", n))
	} else {
		b.WriteString(strings.Repeat("<a/>", budget/4))
	}
	b.WriteString(`</ErrorDetails></Response>`)
	return b.Bytes()
}

// peakHeapGrowth samples the heap while fn runs and returns the largest
// growth over the heap before it started.
func peakHeapGrowth(fn func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
			peak = ms.HeapAlloc - base
		}
		select {
		case <-done:
			return peak
		default:
		}
	}
}

// TestHostileXMLAnswerHeap: an answer under the size cap, flat or deeply
// nested, is refused without growing the heap past a small multiple of
// its size (it used to grow by 350-400 MB and get the function killed).
func TestHostileXMLAnswerHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates large answers")
	}
	for _, tt := range []struct {
		name string
		body []byte
	}{{"flat", hostileXML(false)}, {"nested", hostileXML(true)}, {"attributes", hostileAttrs()}, {"json array", hostileJSON()}} {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			var err error
			peak := peakHeapGrowth(func() { _, err = DecodeResponse(body) })
			t.Logf("%d-byte %s answer: peak heap growth %.1f MB, err=%v", len(body), tt.name, float64(peak)/1e6, err)
			if !errors.Is(err, ErrDecode) {
				t.Errorf("err = %v, want a malformed response", err)
			}
			// The functions have 256 MB; an answer must not take a third of it.
			if peak > 64<<20 {
				t.Errorf("peak heap growth %d bytes for a %d-byte answer", peak, len(body))
			}
		})
	}
}
