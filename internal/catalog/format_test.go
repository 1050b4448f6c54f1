package catalog

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/record-v1.json")

// The stored record is a documented format: a fixed record encodes to the
// exact bytes of testdata/record-v1.json, and that file decodes back to it.
func TestRecordFormat(t *testing.T) {
	at := time.Date(2026, 11, 29, 2, 14, 5, 0, time.UTC)
	r := Record{
		Schema: SchemaVersion, AccessID: "20181f26d9e94c81acdf9496133d4f23", Name: "FourthCoffeeSample",
		Visibility: Public, FirstSeen: at.Add(-240 * time.Hour), LastSeen: at, Updated: at, Revision: 12,
	}
	r.Verified(Archive{Version: "9cdf8b21033c474db7274ffe113f1f27", At: at.Add(-48 * time.Hour),
		ArchiveKey: "archives/20181f26d9e94c81acdf9496133d4f23/FourthCoffeeSample/2026-11-27T021405Z.xml.gz",
		GeoJSONKey: "archives/20181f26d9e94c81acdf9496133d4f23/FourthCoffeeSample/2026-11-27T021405Z.geojson",
		SHA256:     "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B4B0B822CD15D6C15B0F00A08", EntityCount: 350})
	r.PendingSince = at.Add(-20 * time.Hour)
	r.Failed("download: unauthorized (HTTP 401)", at)
	r.NeedsKey, r.KeyRef = true, "arn:aws:secretsmanager:us-east-1:123456789012:secret:sds-default@v3"
	r.StartJob("0123456789abcdef0123456789abcdef", at.Add(-26*time.Hour))
	r.EndJob("0123456789abcdef0123456789abcdef")
	r.StartJob("fedcba9876543210fedcba9876543210", at.Add(-time.Minute))
	r.Drilled(Drill{At: at.Add(-72 * time.Hour), ArchiveKey: "archives/20181f26d9e94c81acdf9496133d4f23/FourthCoffeeSample/2026-11-25T021405Z.xml.gz", Jobs: 2, Outcome: DrillSucceeded})
	r.Drilled(Drill{At: at.Add(-2 * time.Hour), ArchiveKey: "archives/20181f26d9e94c81acdf9496133d4f23/FourthCoffeeSample/2026-11-27T021405Z.xml.gz", Jobs: 2, Outcome: DrillFailed,
		Reasons: []string{"JobAborted: 1 entity has neither Latitude and Longitude nor a geography"}})
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/record-v1.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("record encodes as\n%s\nwant\n%s", got, want)
	}
	back, err := decodeRecord(want, ID{"20181F26D9E94C81ACDF9496133D4F23", "fourthcoffeesample"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.MarshalIndent(back, "", "  ")
	if string(append(again, '\n')) != string(want) {
		t.Errorf("decoding loses something:\n%s", again)
	}
}

// A drill's record carries the last success and the last try forward; a
// skipped drill is no try; a record with an unknown outcome is refused.
func TestDrilled(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	var r Record
	r.Drilled(Drill{At: day(1), Jobs: 2, Outcome: DrillSucceeded})
	r.Drilled(Drill{At: day(8), Jobs: 2, Outcome: DrillFailed, Reasons: []string{"x"}})
	r.Drilled(Drill{At: day(15), Outcome: DrillSkipped, Reasons: []string{"no free data source slot"}})
	d := r.LastDrill
	if d.Outcome != DrillSkipped || !d.At.Equal(day(15)) || !d.SucceededAt.Equal(day(1)) || !d.TriedAt.Equal(day(8)) {
		t.Errorf("last drill %+v: want skipped on the 15th, tried on the 8th, succeeded on the 1st", d)
	}
	r = Record{Schema: SchemaVersion, AccessID: "a1", Name: "N", LastDrill: &Drill{At: day(1), Outcome: "maybe"}}
	if err := r.validate(r.ID()); err == nil {
		t.Error("a drill outcome outside succeeded, failed, skipped was accepted")
	}
	data, _ := json.Marshal(Record{LastDrill: &Drill{At: day(1), Outcome: DrillFailed}})
	var m map[string]map[string]any
	_ = json.Unmarshal(data, &m)
	for _, k := range []string{"at", "jobs", "outcome"} {
		if _, ok := m["lastDrill"][k]; !ok {
			t.Errorf("lastDrill has no %q: %s", k, data)
		}
	}
}
