package sds

import "testing"

func BenchmarkDecodeResponse(b *testing.B) {
	for _, file := range []string{"get-download-data-source-job-status-2.json", "get-download-data-source-job-status-1.xml", "get-job-list-2.xml"} {
		body := readExample(b, file)
		b.Run(file, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := DecodeResponse(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
