package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/testenv"
)

// archives is the real converter's listing and ownership check over a
// moto bucket holding keys (empty objects); Convert only records the
// manifest keys it is asked for, or fails with err: the event handling is
// tested here, the conversion itself in internal/conversion and end to
// end in statemachine.
type archives struct {
	*conversion.Converter
	converted []string
	listed    int
	err       error
}

func newArchives(t *testing.T, keys ...string) *archives {
	t.Helper()
	api := testenv.S3(t)
	bucket := testenv.Bucket(t, api)
	store, err := archive.New(api, archive.Config{Bucket: bucket, Prefix: "sds-exports/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := api.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: strings.NewReader("")}); err != nil {
			t.Fatal(err)
		}
	}
	return &archives{Converter: conversion.New(api, store)}
}

func (p *archives) Convert(_ context.Context, mkey string) (conversion.Result, error) {
	if p.err != nil {
		return conversion.Result{}, p.err
	}
	p.converted = append(p.converted, mkey)
	return conversion.Result{ManifestKey: mkey, Key: strings.TrimSuffix(mkey, archive.ManifestSuffix)}, nil
}

// ListManifests counts the listings before making them.
func (p *archives) ListManifests(ctx context.Context, prefix, startAfter string, max int) ([]string, string, bool, error) {
	p.listed++
	return p.Converter.ListManifests(ctx, prefix, startAfter, max)
}

func TestConvertEvents(t *testing.T) {
	const key = "sds-exports/a1/Stores/2024/05/01/j1.xml"
	conv := newArchives(t)
	for _, tc := range []struct {
		why, event string
		wantType   string // "" for success
		converted  string
	}{
		{"a key", `{"key":"` + key + `"}`, "", key + ".manifest.json"},
		{"a manifest key", `{"manifestKey":"` + key + `.manifest.json"}`, "", key + ".manifest.json"},
		{"both, agreeing", `{"key":"` + key + `","manifestKey":"` + key + `.manifest.json"}`, "", key + ".manifest.json"},
		{"both, naming different archives", `{"key":"` + key + `","manifestKey":"x.xml.manifest.json"}`, InvalidInput, ""},
		{"the data source's own archive", `{"accessId":"a1","dataSourceName":"Stores","key":"` + key + `"}`, "", key + ".manifest.json"},
		{"another data source's archive", `{"accessId":"a1","dataSourceName":"Store","key":"` + key + `"}`, InvalidInput, ""},
		{"a malformed data source name", `{"accessId":"a1","dataSourceName":"../x","key":"` + key + `"}`, InvalidInput, ""},
		{"nothing to convert", `{}`, InvalidInput, ""},
		{"a key and a prefix", `{"key":"` + key + `","prefix":"a1/"}`, InvalidInput, ""},
		{"a prefix and a data source", `{"prefix":"a1/","accessId":"a1","dataSourceName":"Stores"}`, InvalidInput, ""},
		{"an unknown field", `{"key":"` + key + `","force":true}`, InvalidInput, ""},
		{"not JSON", `key=x`, InvalidInput, ""},
	} {
		t.Run(tc.why, func(t *testing.T) {
			p := &archives{Converter: conv.Converter}
			out, err := convert(context.Background(), p, []byte(tc.event))
			if tc.wantType == "" {
				if err != nil || len(p.converted) != 1 || p.converted[0] != tc.converted {
					t.Fatalf("err %v, converted %v; want %s", err, p.converted, tc.converted)
				}
				if out.(map[string]any)["status"] != "Converted" {
					t.Errorf("output %v", out)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Type != tc.wantType || len(p.converted) != 0 {
				t.Fatalf("err %v, converted %v; want %s and nothing converted", err, p.converted, tc.wantType)
			}
		})
	}
}

// TestConvertRefusesUncheckedKeys: every key and prefix of a convert
// event is an archive's of the layout, normalized and within S3's 1,024
// bytes, before anything is read or listed.
func TestConvertRefusesUncheckedKeys(t *testing.T) {
	conv := newArchives(t)
	const dir = "sds-exports/a1/Stores/2024/05/01/"
	bad := map[string]string{
		"dot-dot":          dir + "../../../../../../catalog/v1/j1.xml",
		"dot-dot in name":  "sds-exports/a1/../a1/Stores/2024/05/01/j1.xml",
		"dot-slash":        "sds-exports/./a1/Stores/2024/05/01/j1.xml",
		"double slash":     "sds-exports/a1//Stores/2024/05/01/j1.xml",
		"NUL":              dir + "j1\x00.xml",
		"over 1,024 bytes": dir + strings.Repeat("j", 1020) + ".xml",
		"outside":          "catalog/v1/index.json",
		"another bucket":   "s3://other-bucket/x.xml",
	}
	for why, k := range bad {
		for _, field := range []string{"key", "manifestKey"} {
			t.Run(why+" "+field, func(t *testing.T) {
				v := k
				if field == "manifestKey" {
					v += archive.ManifestSuffix
				}
				p := &archives{Converter: conv.Converter}
				_, err := convert(context.Background(), p, must(json.Marshal(map[string]string{field: v})))
				if err == nil || classify(err).Type != InvalidInput || len(p.converted) != 0 {
					t.Fatalf("%s %.80q: %v, converted %v; want InvalidInput, nothing converted", field, v, err, p.converted)
				}
			})
		}
	}
	for _, prefix := range []string{"../", "a1/../../catalog/", "./a1/", "a1//", "sds-exports/a1/\x00", strings.Repeat("a/", 600)} {
		p := &archives{Converter: conv.Converter}
		_, err := convert(context.Background(), p, must(json.Marshal(map[string]string{"prefix": prefix})))
		if err == nil || classify(err).Type != InvalidInput || p.listed != 0 {
			t.Errorf("prefix %.80q: %v, %d listings; want InvalidInput, nothing listed", prefix, err, p.listed)
		}
	}
}

func TestConvertErrorTypes(t *testing.T) {
	conv := newArchives(t)
	for class, want := range map[error]string{
		conversion.ErrIntegrity: ArchiveTampered,
		conversion.ErrNotFound:  ArchiveNotFound,
		conversion.ErrInvalid:   InvalidInput,
		conversion.ErrExport:    ConversionFailed,
		conversion.ErrStorage:   ArchiveUnavailable,
	} {
		p := &archives{Converter: conv.Converter, err: fmt.Errorf("convert s3://b/k: %w: detail", class)}
		_, err := convert(context.Background(), p, []byte(`{"key":"sds-exports/a/b/2024/01/01/j.xml"}`))
		if e := classify(err); e.Type != want || !strings.Contains(e.Message, "detail") {
			t.Errorf("%v: type %s message %q, want %s", class, e.Type, e.Message, want)
		}
	}
}

// TestConvertBackfillPages: pages of at most 100 manifests, in key
// order, each page's outcomes counted into the totals of the next; only
// the data source's archive manifests, not the archives, their outputs or
// another data source's.
func TestConvertBackfillPages(t *testing.T) {
	var manifests, objects []string
	for i := range 250 {
		k := fmt.Sprintf("sds-exports/a1/Stores/2024/05/01/j%03d.xml", i)
		manifests = append(manifests, k+archive.ManifestSuffix)
		objects = append(objects, k+archive.ManifestSuffix)
		if i%50 == 0 {
			objects = append(objects, k, strings.TrimSuffix(k, ".xml")+".geojson", strings.TrimSuffix(k, ".xml")+".schema.json",
				k+".load-0123.failed.xml", "sds-exports/a1/Stores-2/2024/05/01/other.xml"+archive.ManifestSuffix)
		}
	}
	p := newArchives(t, objects...)
	ev := map[string]any{"accessId": "a1", "dataSourceName": "Stores"}
	var seen []string
	var page BackfillPage
	for range 10 {
		raw, _ := json.Marshal(ev)
		out, err := convert(context.Background(), p, raw)
		if err != nil {
			t.Fatal(err)
		}
		page = out.(BackfillPage)
		if len(page.ManifestKeys) > backfillPageSize {
			t.Fatalf("a page of %d", len(page.ManifestKeys))
		}
		seen = append(seen, page.ManifestKeys...)
		// The state machine's Map: every third archive fails, every
		// fifth was converted before.
		var results []BackfillOutcome
		for i, k := range page.ManifestKeys {
			o := BackfillOutcome{ManifestKey: k, Status: "Converted"}
			switch {
			case i%3 == 0:
				o = BackfillOutcome{ManifestKey: k, Status: "Failed", Error: "ArchiveTampered", Cause: strings.Repeat("x", 2000)}
			case i%5 == 0:
				o.Status = "Reused"
			}
			results = append(results, o)
		}
		ev = map[string]any{"accessId": "a1", "dataSourceName": "Stores", "startAfter": page.StartAfter, "done": page.Done, "totals": page.Totals, "results": results}
		if len(page.ManifestKeys) == 0 {
			break
		}
	}
	if !slices.Equal(seen, manifests) {
		t.Fatalf("listed %d manifests, want the data source's 250 in key order", len(seen))
	}
	tot := page.Totals
	if tot.Converted+tot.Skipped+tot.Failed != 250 || tot.Failed != 34+34+17 || len(tot.Failures) != maxListedFailures || len(tot.Failures[0].Cause) > 500+len("…") {
		t.Errorf("totals %d converted, %d skipped, %d failed, %d failures listed", tot.Converted, tot.Skipped, tot.Failed, len(tot.Failures))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
