package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sds"
)

// switchedCount is how many entities the changed version keeps; it also
// renames the first entity's Locality to switchedLocality.
const (
	switchedCount    = 300
	switchedLocality = "Switched Town"
)

// answer is what one query of the switch loop saw.
type answer struct {
	count, locality string
}

// switchVersion loads a changed version of the sample data source into the
// emulator (export minus its entities past switchedCount, the first one
// renamed), then calls backup, while one client queries the endpoint in a
// loop. Every answer must be the old version's or the new one's, whole;
// none may fail; once the new one is served the old one never comes back.
func switchVersion(t *testing.T, env map[string]string, export []byte, backup func()) {
	t.Helper()
	ctx := context.Background()
	before := queryFirst(ctx, env, "0")
	if before.err != nil || before.count != "350" || before.locality == "" || before.locality == switchedLocality {
		t.Fatalf("before the switch: %+v", before)
	}
	changed := changeExport(t, export)
	c, err := sds.New(env["SDSEMU_URL"], localrun.DefaultMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	job, err := c.Load(ctx, sds.LoadRequest{Name: source, Operation: sds.LoadComplete, Body: bytes.NewReader(changed), Size: int64(len(changed)), Entities: switchedCount})
	if err != nil {
		t.Fatalf("load the changed version: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); !job.Status.Done(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("load job %s still %s after 30 s", job.ID, job.Status)
		}
		if job, err = c.JobStatus(ctx, job.StatusURL()); err != nil {
			t.Fatal(err)
		}
	}
	if job.Status != sds.StatusCompleted {
		t.Fatalf("load job %s: %s", job.ID, job.Status)
	}

	old, next := answer{"350", before.locality}, answer{strconv.Itoa(switchedCount), switchedLocality}
	type tally struct {
		old, next, failed, mixed, back int
		firstProblem                   string
	}
	done := make(chan tally)
	stop := make(chan struct{})
	go func() {
		// Bounded: at most 20,000 requests or 2 minutes, and it ends by
		// itself 100 answers after the new version appears.
		var tl tally
		problem := func(s string) {
			if tl.firstProblem == "" {
				tl.firstProblem = s
			}
		}
		deadline := time.Now().Add(2 * time.Minute)
		stopping := false
		for i := 0; i < 20000 && time.Now().Before(deadline) && (!stopping || tl.next < 100); i++ {
			select {
			case <-stop:
				stopping = true
			default:
			}
			a := queryFirst(ctx, env, "0")
			switch {
			case a.err != nil:
				tl.failed++
				problem(a.err.Error())
			case a.answer == old:
				tl.old++
				if tl.next > 0 {
					tl.back++
					problem("the old version again after the new one")
				}
			case a.answer == next:
				tl.next++
			default:
				tl.mixed++
				problem(fmt.Sprintf("%+v is neither version", a.answer))
			}
			time.Sleep(2 * time.Millisecond)
		}
		done <- tl
	}()
	begun := time.Now()
	backup()
	close(stop)
	tl := <-done
	t.Logf("switch: %d answers of the old version, %d of the new, %d failed, %d mixed, %d back to the old, over %s",
		tl.old, tl.next, tl.failed, tl.mixed, tl.back, time.Since(begun).Round(time.Millisecond))
	if tl.failed+tl.mixed+tl.back > 0 {
		t.Errorf("during the switch: %d failed, %d mixed, %d back to the old version; first: %s", tl.failed, tl.mixed, tl.back, tl.firstProblem)
	}
	if tl.old == 0 || tl.next < 100 {
		t.Errorf("the loop saw %d answers of the old version and %d of the new, want some of the old and 100 of the new", tl.old, tl.next)
	}
}

// entityPattern matches one entity of the sample's export with its ID.
var entityPattern = regexp.MustCompile(`(?s)<FourthCoffeeShops>\s*<EntityID>(\d+)</EntityID>.*?</FourthCoffeeShops>\r?\n?`)

// changeExport drops the entities past switchedCount and renames entity
// 1's Locality.
func changeExport(t *testing.T, export []byte) []byte {
	t.Helper()
	kept := 0
	out := entityPattern.ReplaceAllFunc(export, func(e []byte) []byte {
		id, _ := strconv.Atoi(string(entityPattern.FindSubmatch(e)[1]))
		if id > switchedCount {
			return nil
		}
		kept++
		if id == 1 {
			e = regexp.MustCompile(`<Locality>[^<]*</Locality>`).ReplaceAll(e, []byte("<Locality>"+switchedLocality+"</Locality>"))
		}
		return e
	})
	if kept != switchedCount || !bytes.Contains(out, []byte(switchedLocality)) {
		t.Fatalf("the export kept %d entities (want %d) or entity 1 has no Locality", kept, switchedCount)
	}
	return out
}

// queried is one answer of queryFirst.
type queried struct {
	answer
	err error
}

// queryFirst asks the endpoint for the count of all entities and the
// first one's Locality, in one request.
func queryFirst(ctx context.Context, env map[string]string, staging string) queried {
	u := env["QUERY_URL"] + "/REST/v1/data/" + accessID + "/" + source + "/FourthCoffeeShops?spatialFilter=bbox(-90,-180,90,180)&$top=1&$inlinecount=allpages&$select=EntityID,Locality&$format=json&isStaging=" + staging + "&key=" + env["QUERY_KEY"]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return queried{err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return queried{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return queried{err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return queried{err: fmt.Errorf("%d %s", resp.StatusCode, body)}
	}
	var doc struct {
		D struct {
			Count   string `json:"__count"`
			Results []struct {
				EntityID, Locality string
			} `json:"results"`
		} `json:"d"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.D.Results) != 1 || doc.D.Results[0].EntityID != "1" {
		return queried{err: fmt.Errorf("not an answer with entity 1 first (%v): %s", err, body)}
	}
	return queried{answer: answer{doc.D.Count, doc.D.Results[0].Locality}}
}

// countStaged is the entity count the endpoint answers with isStaging set
// to staging, once it answers 200 (the catalog is re-read every 2 s).
func countStaged(t *testing.T, env map[string]string, staging string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := queryFirst(context.Background(), env, staging)
		if a.err == nil {
			return a.count
		}
		if time.Now().After(deadline) {
			t.Fatalf("isStaging=%s: %v", staging, a.err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
