// Command localrun backs up a sample data source on this machine through
// the real backup state machine: the SDS emulator, moto (S3, Secrets
// Manager, Step Functions) and the real function binaries. `make run`
// calls it from the repository root.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/localaws"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

func main() {
	accessID := flag.String("access-id", "20181f26d9e94c81acdf9496133d4f23", "accessId of the data source to back up")
	name := flag.String("data-source", "FourthCoffeeSample", "name of the data source to back up (the embedded sample account)")
	scale := flag.Float64("wait-scale", 0.1, "scale of the state machine's waits (1 = real time: the first check after 15 s)")
	jobTime := flag.Duration("job-duration", 3*time.Second, "how long the emulated download job runs")
	verbose := flag.Bool("v", false, "show moto's and the functions' output")
	out := flag.String("out", localrun.DefaultSaveDir, "folder to save the archive, its GeoJSON and schema document in")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *accessID, *name, *scale, *jobTime, *verbose, *out); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "interrupted")
			os.Exit(130)
		}
		if errors.Is(err, localaws.ErrMotoUnavailable) {
			fmt.Fprintln(os.Stderr, "make run needs moto_server:", localaws.InstallHint)
		}
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, accessID, name string, scale float64, jobTime time.Duration, verbose bool, out string) error {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	var logw io.Writer
	if verbose {
		logw = os.Stderr
	}
	cfg := sdsemu.DefaultConfig()
	cfg.DownloadJobDuration = jobTime
	cfg.JobDuration = jobTime
	say("building the functions and starting the SDS emulator, moto and the Lambda endpoint ...")
	env, err := localrun.Start(ctx, localrun.Options{Emulator: cfg, WaitScale: scale, Log: logw})
	if err != nil {
		return err
	}
	defer func() {
		env.Stop()
		say("stopped the emulator, moto and the functions")
	}()
	say("SDS emulator at %s; AWS (moto) behind %s", env.EmulatorURL, env.Stack.Endpoint())

	input := map[string]any{"accessId": accessID, "dataSourceName": name}
	execName := fmt.Sprintf("local-backup-%d", time.Now().Unix())
	arn, err := env.StartExecution(ctx, "backup", execName, input)
	if err != nil {
		return err
	}
	say("started backup of %s/%s (execution %s)", accessID, name, execName)
	x, err := env.Wait(ctx, arn, func(ev sfntypes.HistoryEvent) { progress(say, ev) })
	if err != nil {
		return err
	}
	if x.Status != sfntypes.ExecutionStatusSucceeded {
		return fmt.Errorf("backup %s: %s: %s", x.Status, x.Error, x.Cause)
	}
	key, _ := x.Output["key"].(string)
	head, err := env.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(env.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("the archive is not in S3: %w", err)
	}
	fmt.Println()
	fmt.Printf("archived  s3://%s/%s\n", env.Bucket, key)
	fmt.Printf("manifest  s3://%s/%v\n", env.Bucket, x.Output["manifestKey"])
	fmt.Printf("size      %d bytes\n", aws.ToInt64(head.ContentLength))
	fmt.Printf("sha256    %v\n", x.Output["sha256"])
	fmt.Printf("entities  %v\n", x.Output["entityCount"])
	if conv, ok := x.Output["conversion"].(map[string]any); ok {
		if rec, ok := conv["conversion"].(map[string]any); ok {
			fmt.Printf("features  %v %v (invalid %v, missing %v)\n", rec["featureCount"], rec["geometryCounts"], rec["invalidGeometries"], rec["missingGeometries"])
		}
	}
	// The archive, its manifest, GeoJSON, GeoParquet and schema document share the
	// key up to the job id.
	paths, err := env.Save(ctx, out, archive.Beside(key, "."))
	if err != nil {
		return fmt.Errorf("saving the archive locally: %w", err)
	}
	fmt.Println()
	fmt.Printf("saved in %s (open the .geojson in QGIS or any GIS, the .parquet in DuckDB, GeoPandas or GDAL >= 3.8):\n", out)
	for _, p := range paths {
		fmt.Printf("  %s\n", p)
	}
	return nil
}

// progress prints the history events a user cares about.
func progress(say func(string, ...any), ev sfntypes.HistoryEvent) {
	switch {
	case ev.StateEnteredEventDetails != nil:
		d := ev.StateEnteredEventDetails
		switch aws.ToString(d.Name) {
		case "WaitForJob":
			var st struct {
				Status          string `json:"status"`
				PollCount       int    `json:"pollCount"`
				NextWaitSeconds int    `json:"nextWaitSeconds"`
				JobID           string `json:"jobId"`
			}
			json.Unmarshal([]byte(aws.ToString(d.Input)), &st)
			if st.PollCount == 0 {
				say("download job %s created; first check in %d s (scaled)", st.JobID, st.NextWaitSeconds)
			} else {
				say("check %d: job %s; next check in %d s (scaled)", st.PollCount, st.Status, st.NextWaitSeconds)
			}
		case "Convert":
			say("archived; converting the archive to GeoJSON and GeoParquet")
		case "CopyToS3":
			var st struct {
				TotalEntityCount int `json:"totalEntityCount"`
				PollCount        int `json:"pollCount"`
			}
			json.Unmarshal([]byte(aws.ToString(d.Input)), &st)
			say("check %d: job Completed with %d entities; copying the export to S3", st.PollCount, st.TotalEntityCount)
		}
	case ev.LambdaFunctionFailedEventDetails != nil:
		d := ev.LambdaFunctionFailedEventDetails
		say("function failed: %s (the state machine retries or stops)", aws.ToString(d.Error))
	case ev.ExecutionSucceededEventDetails != nil:
		say("execution succeeded")
	case ev.ExecutionFailedEventDetails != nil:
		say("execution failed: %s", aws.ToString(ev.ExecutionFailedEventDetails.Error))
	}
}
