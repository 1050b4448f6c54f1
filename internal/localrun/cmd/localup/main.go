// Command localup runs the whole product on this machine until Ctrl-C: the
// SDS emulator, moto (S3, Secrets Manager, and Step Functions with every
// state machine of statemachine/*.asl.json) and the real function binaries.
// It prints the environment that points the AWS CLI at it, so that a user
// drives it with the same commands as the deployed stack. `make up` calls it
// from the repository root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/localaws"
	"github.com/sdsops/sdsops/internal/localrun"
	"github.com/sdsops/sdsops/internal/queryapi"
	"github.com/sdsops/sdsops/internal/queryarchive"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

func main() {
	scale := flag.Float64("wait-scale", 0.1, "scale of the state machines' waits (1 = real time: the first check after 15 s)")
	jobTime := flag.Duration("job-duration", 3*time.Second, "how long the emulated SDS jobs run")
	verbose := flag.Bool("v", false, "show moto's and the functions' output")
	out := flag.String("out", localrun.DefaultSaveDir, "folder kept a copy of the archive bucket (archives, GeoJSON, schema documents) while up")
	lockMode := flag.String("lock-mode", "", "GOVERNANCE or COMPLIANCE: an archive bucket with S3 Object Lock, the functions locking what they archive (as ArchiveObjectLockMode)")
	lockDays := flag.String("lock-days", "1", "with -lock-mode: days each archived object version is locked (as ArchiveObjectLockDays)")
	flag.Parse()
	retention, err := archive.ParseRetention(*lockMode, *lockDays)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := up(ctx, os.Stdout, *scale, *jobTime, *verbose, *out, retention); err != nil {
		if errors.Is(err, localaws.ErrMotoUnavailable) {
			fmt.Fprintln(os.Stderr, "make up needs moto_server:", localaws.InstallHint)
		}
		fmt.Fprintln(os.Stderr, "up:", err)
		os.Exit(1)
	}
}

func up(ctx context.Context, out io.Writer, scale float64, jobTime time.Duration, verbose bool, saveDir string, retention archive.Retention) error {
	var logw io.Writer
	if verbose {
		logw = os.Stderr
	}
	cfg := sdsemu.DefaultConfig()
	cfg.DownloadJobDuration = jobTime
	cfg.JobDuration = jobTime
	fmt.Fprintln(os.Stderr, "building the functions and starting the SDS emulator, moto and the Lambda endpoint ...")
	env, err := localrun.Start(ctx, localrun.Options{Emulator: cfg, WaitScale: scale, Log: logw, Retention: retention})
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	defer func() {
		env.Stop()
		fmt.Fprintln(os.Stderr, "stopped the emulator, moto and the functions")
	}()
	if saveDir != "" {
		// The folder follows the bucket while the stack is up: moto goes
		// with Ctrl-C, the files stay.
		go env.Mirror(ctx, saveDir, 2*time.Second, func(path string) {
			fmt.Fprintln(os.Stderr, "saved", path)
		})
	}
	queryURL, stopQuery, err := serveQuery(env)
	if err != nil {
		return err
	}
	defer stopQuery()
	apiURL, stopAPI, err := env.ServeAPI()
	if err != nil {
		return fmt.Errorf("API endpoint: %w", err)
	}
	defer stopAPI()
	printEnv(out, env, cfg, queryURL, apiURL)
	<-ctx.Done()
	return nil
}

// localQueryKey is the key the local Query API endpoint accepts, besides
// the emulator's master key.
const localQueryKey = "sdsops-local-query-key"

// serveQuery serves the Query API from the archives in the local bucket,
// as the query function does, on a free loopback port.
func serveQuery(env *localrun.Env) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("query endpoint: %w", err)
	}
	h := &queryapi.Handler{
		Catalog: &queryarchive.Catalog{Records: catalog.New(env.S3, env.Bucket, ""), Objects: env.S3, Bucket: env.Bucket,
			Recheck: 2 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		AccountKeys: [][32]byte{queryapi.HashKey(localQueryKey)},
		MasterKeys:  [][32]byte{queryapi.HashKey(localrun.DefaultMasterKey)},
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// printEnv writes shell lines to paste: the AWS CLI's endpoint, region and
// dummy credentials, one variable per state machine, the bucket, the
// emulator and the Query API endpoint with a key that works, then the
// sample data sources as comments. The SDSOPS_ variables are the operator
// CLI's (there are no stack outputs locally).
func printEnv(w io.Writer, env *localrun.Env, cfg sdsemu.Config, queryURL, apiURL string) {
	region := env.Stack.Moto.Region()
	fmt.Fprintln(w, "# sdsops local stack: paste into another shell")
	fmt.Fprintln(w, "unset AWS_PROFILE AWS_SESSION_TOKEN")
	lines := [][2]string{
		{"AWS_ENDPOINT_URL", env.Stack.Endpoint()},
		{"AWS_REGION", region},
		{"AWS_DEFAULT_REGION", region},
		{"AWS_ACCESS_KEY_ID", localrun.LocalAccessKeyID},
		{"AWS_SECRET_ACCESS_KEY", localrun.LocalSecretAccessKey},
		{"ARCHIVE_BUCKET", env.Bucket},
		{"SDSEMU_URL", env.EmulatorURL},
		{"QUERY_URL", queryURL},
		{"QUERY_KEY", localQueryKey},
		{"SDSOPS_API", apiURL},
		{"SDSOPS_BUCKET", env.Bucket},
		{"SDSOPS_DISCOVER_FUNCTION", "discover"},
		{"SDSOPS_RESTORE_FUNCTION", "restore"},
		{"SDSOPS_CONVERT_MACHINE", env.StateMachines["convert"]},
	}
	names := make([]string, 0, len(env.StateMachines))
	for name := range env.StateMachines {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lines = append(lines, [2]string{MachineVar(name), env.StateMachines[name]})
	}
	for _, l := range lines {
		fmt.Fprintf(w, "export %s=%s\n", l[0], l[1])
	}
	fmt.Fprintln(w, "# sample data sources (accessId dataSourceName, master key in the secret "+env.SecretID+"):")
	for _, a := range cfg.Accounts {
		for _, ds := range a.DataSources {
			fmt.Fprintf(w, "#   %s %s\n", ds.AccessID, ds.Name)
		}
	}
	fmt.Fprintln(w, "# the Query API over the archives, once a data source is backed up, e.g.:")
	fmt.Fprintln(w, `#   curl "$QUERY_URL/REST/v1/data/{accessId}/{dataSourceName}/{entityTypeName}?spatialFilter=nearby(47.6,-122.3,50)&\$format=json&key=$QUERY_KEY"`)
	fmt.Fprintln(w, localrun.ReadyLine)
}

// MachineVar is the variable holding a state machine's ARN: SM_BACKUP for
// statemachine/backup.asl.json, SM_SCHEDULED_BACKUP for scheduled-backup.
func MachineVar(name string) string {
	return "SM_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}
