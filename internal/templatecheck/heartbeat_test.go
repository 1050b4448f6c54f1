package templatecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// heartbeatEMF is what CloudWatch reads of an Embedded Metric Format line.
type heartbeatEMF struct {
	Namespace  string
	Metric     string
	Dimensions map[string]string
	Value      float64
}

// readHeartbeatLine reads the metric out of the line discover prints, as
// CloudWatch Logs does: the _aws block names the namespace, the metric and
// the dimension keys, whose values are the line's fields.
func readHeartbeatLine(t *testing.T, line []byte) heartbeatEMF {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	cw := list(obj(doc["_aws"])["CloudWatchMetrics"])
	if len(cw) != 1 || len(list(obj(cw[0])["Metrics"])) != 1 || len(list(obj(cw[0])["Dimensions"])) != 1 {
		t.Fatalf("heartbeat line %s: want one metric in one dimension set", line)
	}
	m := obj(cw[0])
	out := heartbeatEMF{Namespace: str(m["Namespace"]), Metric: str(obj(list(m["Metrics"])[0])["Name"]), Dimensions: map[string]string{}}
	for _, k := range list(list(m["Dimensions"])[0]) {
		out.Dimensions[str(k)] = str(doc[str(k)])
	}
	out.Value, _ = doc[out.Metric].(float64)
	return out
}

// TestHeartbeatAlarmWatchesTheHeartbeat: the alarm that says "no nightly
// run" watches exactly the metric discover emits, treats missing data as
// breaching, and its window fits CloudWatch's limits for every allowed
// NightlyHeartbeatHours.
func TestHeartbeatAlarmWatchesTheHeartbeat(t *testing.T) {
	src, tp := load(t)
	a, ok := tp.Resources["NightlyHeartbeatAlarm"]
	if !ok || a.Type != "AWS::CloudWatch::Alarm" {
		t.Fatal("no NightlyHeartbeatAlarm")
	}
	p := a.Properties
	const stack = "teststack"
	line, err := nightly.HeartbeatLine(stack, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	emitted := readHeartbeatLine(t, line)
	if emitted.Value != 1 {
		t.Errorf("the heartbeat line puts %v, want 1", emitted.Value)
	}
	dims := list(p["Dimensions"])
	if str(p["Namespace"]) != emitted.Namespace || str(p["MetricName"]) != emitted.Metric || len(dims) != len(emitted.Dimensions) {
		t.Errorf("the alarm watches %s/%s %v; discover emits %s/%s %v", p["Namespace"], p["MetricName"], dims, emitted.Namespace, emitted.Metric, emitted.Dimensions)
	}
	for _, d := range dims {
		if _, ok := emitted.Dimensions[str(obj(d)["Name"])]; !ok || str(obj(obj(d)["Value"])["Ref"]) != "AWS::StackName" {
			t.Errorf("alarm dimension %v: want %s = the stack's name", d, nightly.DimensionStack)
		}
	}
	env := obj(obj(tp.Resources["DiscoverFunction"].Properties["Environment"])["Variables"])
	if str(obj(env["STACK_NAME"])["Ref"]) != "AWS::StackName" {
		t.Errorf("DiscoverFunction's STACK_NAME is %v, want the stack's name: the dimension's value", env["STACK_NAME"])
	}
	if str(p["TreatMissingData"]) != "breaching" {
		t.Errorf("TreatMissingData %v: a night that did not run puts no data, which must raise the alarm", p["TreatMissingData"])
	}
	// Every hourly period of the window without a heartbeat.
	if str(p["Statistic"]) != "Sum" || str(p["ComparisonOperator"]) != "LessThanThreshold" || fmt.Sprint(p["Threshold"]) != "1" || fmt.Sprint(p["Period"]) != "3600" {
		t.Errorf("alarm %v %v %v over %v s: want Sum LessThanThreshold 1 over 3600 s", p["Statistic"], p["ComparisonOperator"], p["Threshold"], p["Period"])
	}
	for _, k := range []string{"EvaluationPeriods", "DatapointsToAlarm"} {
		if str(obj(p[k])["Ref"]) != "NightlyHeartbeatHours" {
			t.Errorf("%s is %v, want NightlyHeartbeatHours", k, p[k])
		}
	}
	hours := src.Parameters["NightlyHeartbeatHours"]
	lo, hi := hours["MinValue"], hours["MaxValue"]
	if hi == nil || toInt(hi)*3600 > 7*24*3600 || toInt(lo) < 2 || toInt(hours["Default"]) != int(nightly.DefaultHeartbeat.Hours()) {
		t.Errorf("NightlyHeartbeatHours %v..%v default %v: CloudWatch evaluates at most 7 days (604,800 s) of hourly periods; the default is a daily schedule plus 6 h", lo, hi, hours["Default"])
	}
	if !slices.Contains(refs(p["AlarmActions"]), "AlarmTopic") || !slices.Contains(refs(p["OKActions"]), "AlarmTopic") {
		t.Error("the alarm does not notify the alarm topic when raised and cleared")
	}
	if d := fmt.Sprint(p["AlarmDescription"]); !runbookLink(d, "NightlyHeartbeatAlarm") {
		t.Errorf("description %s: want what failed, what to do and README.md#nightlyheartbeatalarm", d)
	}

	// moto's CloudWatch takes the alarm as deployed (the default window),
	// files the emitted heartbeat under the alarm's metric, and keeps
	// TreatMissingData.
	alarm := map[string]any{"AlarmName": "heartbeat", "Namespace": p["Namespace"], "MetricName": p["MetricName"],
		"Dimensions": []map[string]string{{"Name": nightly.DimensionStack, "Value": stack}}, "Statistic": p["Statistic"],
		"Period": 3600, "EvaluationPeriods": toInt(hours["Default"]), "DatapointsToAlarm": toInt(hours["Default"]),
		"ComparisonOperator": p["ComparisonOperator"], "Threshold": 1, "TreatMissingData": p["TreatMissingData"]}
	in, _ := json.Marshal(map[string]any{"endpoint": testenv.Endpoint(t), "alarm": alarm, "metric": emitted})
	cmd := exec.Command(python(), "-c", motoAlarmScript)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("moto: %v\n%s", err, out)
	}
	var got struct {
		Metrics          int
		TreatMissingData string
		Evaluation       int
		StateAfterSet    string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("moto: %s", out)
	}
	if got.Metrics != 1 || got.TreatMissingData != "breaching" || got.Evaluation != 30 || got.StateAfterSet != "ALARM" {
		t.Errorf("moto: %+v: want the heartbeat filed under the alarm's metric, breaching, 30 periods, ALARM once set", got)
	}
}

func toInt(v any) int {
	var n int
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

func refs(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, str(obj(e)["Ref"]))
	}
	return out
}

// motoAlarmScript creates the alarm in moto, puts the heartbeat as
// CloudWatch would from the EMF line, and reads both back.
const motoAlarmScript = `
import json, sys, boto3
req = json.load(sys.stdin)
cw = boto3.client("cloudwatch", endpoint_url=req["endpoint"], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
cw.put_metric_alarm(**req["alarm"])
m = req["metric"]
dims = [{"Name": k, "Value": v} for k, v in sorted(m["Dimensions"].items())]
cw.put_metric_data(Namespace=m["Namespace"], MetricData=[{"MetricName": m["Metric"], "Dimensions": dims, "Value": m["Value"]}])
a = req["alarm"]
metrics = cw.list_metrics(Namespace=a["Namespace"], MetricName=a["MetricName"], Dimensions=a["Dimensions"])["Metrics"]
cw.set_alarm_state(AlarmName=a["AlarmName"], StateValue="ALARM", StateReason="no heartbeat")
d = cw.describe_alarms(AlarmNames=[a["AlarmName"]])["MetricAlarms"][0]
print(json.dumps({"Metrics": len(metrics), "TreatMissingData": d.get("TreatMissingData"), "Evaluation": d["EvaluationPeriods"], "StateAfterSet": d["StateValue"]}))
`

// TestOldCatalogVersionsExpire: the catalog and the reports are rewritten
// every night in a versioned bucket; their old versions expire (the
// archives' rule covers ArchivePrefix only).
func TestOldCatalogVersionsExpire(t *testing.T) {
	_, tp := load(t)
	rules := list(obj(tp.Resources["ArchiveBucket"].Properties["LifecycleConfiguration"])["Rules"])
	for _, prefix := range []string{"catalog/", "reports/"} {
		found := false
		for _, r := range rules {
			r := obj(r)
			exp := obj(r["NoncurrentVersionExpiration"])
			if str(r["Prefix"]) == prefix && str(r["Status"]) == "Enabled" && str(obj(exp["NoncurrentDays"])["Ref"]) == "CatalogVersionExpirationDays" {
				found = true
			}
		}
		if !found {
			t.Errorf("no enabled lifecycle rule expires the noncurrent versions under %s after CatalogVersionExpirationDays", prefix)
		}
	}
}
