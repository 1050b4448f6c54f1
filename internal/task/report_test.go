package task_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/retention"
	"github.com/sdsops/sdsops/internal/task"
	"github.com/sdsops/sdsops/internal/testenv"
)

// TestSummaryPublishedOnFailureAndOnSuccessWhenAsked: the report is
// written in every case; its summary reaches the topic after a failed
// night always, after a good one only with SUMMARY_ON_SUCCESS.
func TestSummaryPublishedOnFailureAndOnSuccessWhenAsked(t *testing.T) {
	ctx := context.Background()
	cfg := testenv.AWS(t)
	s3c, snsc, sqsc := testenv.S3(t), sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	started := time.Now().UTC().Truncate(time.Second)
	discover := `"discover":{"runStartedAt":"` + started.Format(time.RFC3339Nano) + `","seen":1,"pastRpo":0,"damagedRecords":[],"scheduled":1,"jobs":{"budget":40}}`
	cases := []struct {
		name      string
		onSuccess bool
		event     string
		outcome   string
		published bool
		subject   string
	}{
		{"a good night, summaries on", true, `{"operation":"report","execution":"n1",` + discover + `,"results":[{"accessId":"a1","dataSourceName":"Src1","status":"Archived"}]}`,
			nightly.OutcomeSucceeded, true, "OK: 1 archived"},
		{"a good night, summaries off", false, `{"operation":"report","execution":"n2",` + discover + `,"results":[{"accessId":"a1","dataSourceName":"Src1","status":"Archived"}]}`,
			nightly.OutcomeSucceeded, false, ""},
		{"a failed backup, summaries off", false, `{"operation":"report","execution":"n3",` + discover + `,"results":[{"accessId":"a1","dataSourceName":"Src1","status":"Failed","error":"JobAborted"}]}`,
			nightly.OutcomeFailed, true, "FAILED: Src1 (JobAborted)"},
		{"discovery failed, summaries off", false, `{"operation":"report","execution":"n4","startedAt":"` + started.Format(time.RFC3339) + `","runError":{"Error":"SecretNotFound","Cause":"secret sdsops/master-key: not found"}}`,
			nightly.OutcomeFailed, true, "FAILED: SecretNotFound"},
		{"retention failed, summaries off", false, `{"operation":"report","execution":"n5",` + discover + `,"results":[],"retention":{"Error":"ArchiveUnavailable","Cause":"list: timeout"}}`,
			nightly.OutcomeFailed, true, "FAILED: ArchiveUnavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket := testenv.Bucket(t, s3c)
			topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(unique(t, "topic"))})
			if err != nil {
				t.Fatal(err)
			}
			q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(unique(t, "mail"))})
			if err != nil {
				t.Fatal(err)
			}
			qa, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
				t.Fatal(err)
			}
			svc := task.NewService(task.Config{ArchiveBucket: bucket, SummaryTopicARN: aws.ToString(topic.TopicArn), SummaryOnSuccess: tc.onSuccess},
				task.Deps{Catalog: catalog.New(s3c, bucket, ""), Objects: s3c, Notifier: snsc})
			out, err := svc.Night(ctx, []byte(tc.event))
			if err != nil {
				t.Fatal(err)
			}
			var res task.ReportResult
			roundTrip(t, out, &res)
			read := func(key string) string {
				o, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
				if err != nil {
					t.Fatalf("%s: %v", key, err)
				}
				defer o.Body.Close()
				b, _ := io.ReadAll(o.Body)
				return string(b)
			}
			body := read(res.Key)
			if latest := read(nightly.LatestReportKey("")); latest != body {
				t.Error("latest.json is not the night's report")
			}
			var rep nightly.Report
			if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Outcome != tc.outcome || res.Outcome != tc.outcome || res.Published != tc.published {
				t.Fatalf("report %s (%v): outcome %q, result %+v; want %q, published %v", res.Key, err, rep.Outcome, res, tc.outcome, tc.published)
			}
			if want := nightly.ReportKey("", started, rep.Execution); res.Key != want {
				t.Errorf("report key %s, want %s", res.Key, want)
			}
			got, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Messages) != map[bool]int{true: 1, false: 0}[tc.published] {
				t.Fatalf("%d messages on the topic, want published %v", len(got.Messages), tc.published)
			}
			if !tc.published {
				return
			}
			var m struct {
				Subject, Message  string
				MessageAttributes map[string]struct{ Value string }
			}
			if err := json.Unmarshal([]byte(aws.ToString(got.Messages[0].Body)), &m); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Subject, tc.subject) || m.MessageAttributes["outcome"].Value != tc.outcome || !strings.Contains(m.Message, res.Key) {
				t.Errorf("summary %q (outcome %q), want %q naming %s:\n%s", m.Subject, m.MessageAttributes["outcome"].Value, tc.subject, res.Key, m.Message)
			}
			// A failed night's summary points at the runbook entry that reads it.
			todo := "What to do: README.md#runbook\n"
			if tc.outcome != nightly.OutcomeSucceeded {
				todo = "What to do: README.md#a-nights-summary-says-failed\n"
			}
			if !strings.Contains(m.Message, todo) {
				t.Errorf("summary does not end with %q:\n%s", todo, m.Message)
			}
		})
	}
}

// A nightly execution started as a dry run backs up nothing; retention
// deletes nothing and no report or summary is written.
func TestDryRunNightDeletesAndReportsNothing(t *testing.T) {
	ctx := context.Background()
	s3c := testenv.S3(t)
	bucket := testenv.Bucket(t, s3c)
	key := "sds-exports/a1/Places/2020/01/02/" + strings.Repeat("d", 32) + ".xml"
	for _, a := range []stored{{name: "old", version: "v1", ageDays: 2000}, {name: "new", version: "v2", ageDays: 1000}} {
		k := strings.Replace(key, "2020/01/02", fmt.Sprintf("2020/01/%02d", a.ageDays/1000), 1)
		putArchive(t, s3c, bucket, k, a, time.Now().Add(-time.Duration(a.ageDays)*24*time.Hour))
	}
	store := catalog.New(s3c, bucket, "")
	if _, err := store.UpdateRecord(ctx, catalog.ID{AccessID: "a1", Name: "Places"}, func(*catalog.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	svc := task.NewService(task.Config{ArchiveBucket: bucket, ArchivePrefix: "sds-exports/", Retention: retention.Policy{KeepVersions: 1}, SummaryTopicARN: "arn:aws:sns:us-east-1:123456789012:none"},
		task.Deps{Catalog: store, Objects: s3c, Sweep: s3c})
	out, err := svc.Night(ctx, []byte(`{"operation":"retention","input":{"dryRun":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got nightly.RetentionReport
	roundTrip(t, out, &got)
	if len(got.Deleted) != 0 {
		t.Errorf("a dry run deleted %+v", got.Deleted)
	}
	out, err = svc.Night(ctx, []byte(`{"operation":"report","execution":"dry","input":{"dryRun":true},"results":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	var res task.ReportResult
	roundTrip(t, out, &res)
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("reports/")})
	if err != nil || res.Outcome != task.OutcomeDryRun || res.Published || len(list.Contents) != 0 {
		t.Errorf("dry run: %+v, %d report objects (%v)", res, len(list.Contents), err)
	}
	// Without the dry run, the same retention deletes the old archive.
	out, err = svc.Night(ctx, []byte(`{"operation":"retention","input":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, out, &got)
	if len(got.Deleted) != 1 {
		t.Errorf("the real retention deleted %+v, want the old archive", got.Deleted)
	}
}

// TestCarriedOverReasonNamesTheCause: a data source seen tonight and left
// pending is reported carried over with the cause the plan found, in its
// figures, and never with a cause that did not hold.
func TestCarriedOverReasonNamesTheCause(t *testing.T) {
	ctx := context.Background()
	s3c := testenv.S3(t)
	started := time.Now().UTC().Truncate(time.Second)
	freesAt := started.Add(21 * time.Hour)
	for _, tc := range []struct {
		name      string
		jobs      nightly.JobUse
		scheduled int
		want      []string
		not       []string
	}{
		{
			name: "the plan carried nothing over", scheduled: 1,
			jobs: nightly.JobUse{Budget: 40, InWindowAtStart: 8, ConcurrencyCap: 5},
			want: []string{"carried nothing over", "8 of the job budget of 40 used", "0 of 5 in process"},
			not:  []string{"used up", "given out"},
		},
		{
			name: "the account's jobs in process filled the cap", scheduled: 0,
			jobs: nightly.JobUse{Budget: 40, InWindowAtStart: 8, ConcurrencyCap: 5, InProcessAtStart: 6, CarryCause: nightly.CarryConcurrency},
			want: []string{"6 SDS jobs were in process when the run started, the cap is 5"},
			not:  []string{"budget"},
		},
		{
			name: "tonight's jobs took the rest of the budget", scheduled: 32,
			jobs: nightly.JobUse{Budget: 40, InWindowAtStart: 8, ConcurrencyCap: 5, CarryCause: nightly.CarryBudget},
			want: []string{"job budget (40 in any 24 hours) was all given out", "8 jobs were started in the 24 hours before the run and 32 were scheduled tonight"},
			not:  []string{"in process"},
		},
		{
			name: "the budget has room only after a run stops waiting", scheduled: 30,
			jobs: nightly.JobUse{Budget: 40, InWindowAtStart: 10, ConcurrencyCap: 5, CarryCause: nightly.CarryHorizon, BudgetFreesAt: freesAt, HorizonHours: 6},
			want: []string{"10 were started in the 24 hours before the run, 30 scheduled tonight", "only at " + freesAt.Format(time.RFC3339), "the 6 hours a run waits"},
			not:  []string{"in process"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := testenv.Bucket(t, s3c)
			store := catalog.New(s3c, bucket, "")
			id := catalog.ID{AccessID: "a1", Name: "Pending1"}
			if _, err := store.UpdateRecord(ctx, id, func(r *catalog.Record) error {
				r.LastSeen, r.PendingSince = started, started.Add(-time.Hour)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			jobs, err := json.Marshal(tc.jobs)
			if err != nil {
				t.Fatal(err)
			}
			event := fmt.Sprintf(`{"operation":"report","execution":"n","discover":{"runStartedAt":%q,"seen":1,"pastRpo":0,"damagedRecords":[],"scheduled":%d,"jobs":%s},"results":[]}`,
				started.Format(time.RFC3339Nano), tc.scheduled, jobs)
			svc := task.NewService(task.Config{ArchiveBucket: bucket}, task.Deps{Catalog: store, Objects: s3c})
			out, err := svc.Night(ctx, []byte(event))
			if err != nil {
				t.Fatal(err)
			}
			var res task.ReportResult
			roundTrip(t, out, &res)
			o, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &res.Key})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Body.Close()
			var rep nightly.Report
			if err := json.NewDecoder(o.Body).Decode(&rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.DataSources) != 1 || rep.DataSources[0].Status != nightly.ReportCarriedOver {
				t.Fatalf("report data sources %+v: want %s carried over", rep.DataSources, id)
			}
			reason := rep.DataSources[0].Reason
			for _, w := range tc.want {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q does not say %q", reason, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(reason, n) {
					t.Errorf("reason %q names a cause that did not hold (%q)", reason, n)
				}
			}
		})
	}
}
