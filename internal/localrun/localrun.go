// Package localrun runs the whole product on one machine: the SDS emulator,
// moto (S3, Secrets Manager and Step Functions executing the real ASL
// definitions) and the real function binaries behind a local Lambda
// endpoint. `make run`, `make up` and the state machine tests use it.
package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/localaws"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// The repository's layout: one main package per Lambda function under
// functions/, one ASL definition per state machine under statemachine/.
const (
	functionsDir = "functions"
	definitions  = "statemachine/*.asl.json"
	aslSuffix    = ".asl.json"
)

// FunctionNames lists the Lambda functions: the directories under
// repoRoot/functions that hold Go files, sorted.
func FunctionNames(repoRoot string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(repoRoot, functionsDir))
	if err != nil {
		return nil, fmt.Errorf("listing the functions: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if gos, _ := filepath.Glob(filepath.Join(repoRoot, functionsDir, e.Name(), "*.go")); len(gos) > 0 {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no functions under %s", filepath.Join(repoRoot, functionsDir))
	}
	return names, nil
}

// StateMachineFiles maps each state machine's name (its definition's file
// name without .asl.json) to the definition under repoRoot/statemachine.
func StateMachineFiles(repoRoot string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(repoRoot, definitions))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no state machine definitions (%s) under %s", definitions, repoRoot)
	}
	files := map[string]string{}
	for _, p := range paths {
		files[strings.TrimSuffix(filepath.Base(p), aslSuffix)] = p
	}
	return files, nil
}

// placeholderKey reduces a placeholder's resource name, a function's
// directory or a state machine's name to one comparable form:
// "CopyToS3", "copytos3"; "ScheduledBackup", "scheduled-backup".
func placeholderKey(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

// resolver fills in the DefinitionSubstitutions the template gives the
// state machines, by naming convention: ${<Name>FunctionArn} is the ARN of
// function functions/<name>, ${<Name>StateMachineArn} (or
// ${<Name>StateMachine}, a !Ref) that of the state machine defined in
// statemachine/<name>.asl.json, names compared without case or hyphens.
func resolver(functions []string, functionARN func(string) string, machineARNs map[string]string) func(string) (string, bool) {
	byKey := map[string]string{}
	for _, fn := range functions {
		byKey["function/"+placeholderKey(fn)] = functionARN(fn)
	}
	for name, arn := range machineARNs {
		byKey["statemachine/"+placeholderKey(name)] = arn
	}
	return func(placeholder string) (string, bool) {
		if base, ok := strings.CutSuffix(placeholder, "FunctionArn"); ok {
			arn, ok := byKey["function/"+placeholderKey(base)]
			return arn, ok
		}
		base, ok := strings.CutSuffix(strings.TrimSuffix(placeholder, "Arn"), "StateMachine")
		if !ok {
			return "", false
		}
		arn, ok := byKey["statemachine/"+placeholderKey(base)]
		return arn, ok
	}
}

// Options configure Start.
type Options struct {
	RepoRoot string        // where functions/ and statemachine/ are
	Emulator sdsemu.Config // no accounts: sdsemu.DefaultConfig()
	// WaitScale scales Wait states and Retry intervals (0 with SkipWaits:
	// no sleeping at all).
	WaitScale float64
	SkipWaits bool
	// FunctionEnv is added to every function's environment.
	FunctionEnv map[string]string
	// MasterKey is stored in the secret; default: the sample account's.
	MasterKey string
	// Log receives moto's and the functions' output; nil discards it.
	Log io.Writer
	// Retention, when on, creates the archive bucket with S3 Object Lock
	// and has the functions lock what must not be lost, as the template's
	// ArchiveObjectLockMode and ArchiveObjectLockDays do.
	Retention archive.Retention
}

// Env is a running local deployment.
type Env struct {
	Emulator    *sdsemu.Server
	EmulatorURL string
	Stack       *localaws.Stack
	SFN         *sfn.Client
	S3          *s3.Client
	Secrets     *secretsmanager.Client
	Bucket      string
	SecretID    string
	// AlarmTopic is the SNS topic of the night's summary, as the
	// template's AlarmTopic.
	AlarmTopic    string
	AWS           aws.Config
	StateMachines map[string]string // name (of statemachine/<name>.asl.json) → ARN
	Functions     []string          // the functions' names (directories under functions/)

	emuServer *http.Server
	binDir    string
	fnEnv     map[string]string
}

// DefaultMasterKey is the master key of the emulator's sample account.
const DefaultMasterKey = "sdsemu-master-key-fourthcoffee"

// Start builds the function binaries for this machine and starts
// everything. Stop undoes it; so does cancelling ctx.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	if opts.RepoRoot == "" {
		opts.RepoRoot = "."
	}
	if opts.MasterKey == "" {
		opts.MasterKey = DefaultMasterKey
	}
	if len(opts.Emulator.Accounts) == 0 {
		opts.Emulator = sdsemu.DefaultConfig()
	}
	e := &Env{StateMachines: map[string]string{}}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()

	if e.binDir, err = os.MkdirTemp("", "sdsops-run-"); err != nil {
		return nil, err
	}
	if e.Functions, err = FunctionNames(opts.RepoRoot); err != nil {
		return nil, err
	}
	files, err := StateMachineFiles(opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	if err := BuildFunctions(ctx, opts.RepoRoot, e.binDir); err != nil {
		return nil, err
	}

	if e.Emulator, err = sdsemu.New(opts.Emulator); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.EmulatorURL = "http://" + ln.Addr().String()
	e.emuServer = &http.Server{Handler: e.Emulator, ReadHeaderTimeout: 10 * time.Second}
	go e.emuServer.Serve(ln)

	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if e.Stack, err = localaws.StartStack(ctx, localaws.StackOptions{
		Moto:   localaws.MotoOptions{WaitScale: opts.WaitScale, SkipWaits: opts.SkipWaits, Log: logw},
		Lambda: localaws.LambdaOptions{Log: logw},
	}); err != nil {
		return nil, err
	}
	cfg, err := e.Stack.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	e.AWS = cfg
	e.SFN = sfn.NewFromConfig(cfg)
	e.S3 = localaws.NewS3Client(cfg)
	e.Secrets = secretsmanager.NewFromConfig(cfg)

	e.Bucket = "sdsops-archive-local"
	bucket := &s3.CreateBucketInput{Bucket: aws.String(e.Bucket)}
	if opts.Retention.On() {
		bucket.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := e.S3.CreateBucket(ctx, bucket); err != nil {
		return nil, fmt.Errorf("creating the archive bucket: %w", err)
	}
	e.SecretID = "sdsops/master-key"
	if _, err := e.Secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(e.SecretID), SecretString: aws.String(`{"masterKey":"` + opts.MasterKey + `"}`),
	}); err != nil {
		return nil, fmt.Errorf("creating the master key secret: %w", err)
	}

	topic, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(machinePrefix + "alarms")})
	if err != nil {
		return nil, fmt.Errorf("creating the alarm topic: %w", err)
	}
	e.AlarmTopic = aws.ToString(topic.TopicArn)
	// Every ARN is known before any state machine exists, so that one
	// definition can name another (a nested execution) in any order.
	arns := map[string]string{}
	for name := range files {
		arns[name] = fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", e.Stack.Moto.Region(), localaws.DefaultAccountID, machinePrefix+name)
	}
	fnEnv := map[string]string{
		"SDS_BASE_URL":         e.EmulatorURL,
		"MASTER_KEY_SECRET_ID": e.SecretID,
		"ARCHIVE_BUCKET":       e.Bucket,
		"S3_USE_PATH_STYLE":    "true",
		// As the template sets them for report.
		"SUMMARY_TOPIC_ARN":              e.AlarmTopic,
		"RETENTION_GUARD_STATE_MACHINES": arns["restore"],
	}
	if r := opts.Retention; r.On() {
		fnEnv["ARCHIVE_LOCK_MODE"], fnEnv["ARCHIVE_LOCK_DAYS"] = string(r.Mode), strconv.Itoa(r.Days)
	}
	for k, v := range opts.FunctionEnv {
		fnEnv[k] = v
	}
	e.fnEnv = fnEnv
	for _, fn := range e.Functions {
		if err := e.SetFunctionTimeout(fn, 5*time.Minute); err != nil {
			return nil, err
		}
	}
	resolve := resolver(e.Functions, e.Stack.Lambda.FunctionARN, arns)
	for name, file := range files {
		def, err := LoadDefinition(file, resolve)
		if err != nil {
			return nil, err
		}
		out, err := e.SFN.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
			Name: aws.String(machinePrefix + name), Definition: aws.String(def),
			RoleArn: aws.String("arn:aws:iam::" + localaws.DefaultAccountID + ":role/sdsops-local"),
		})
		if err != nil {
			return nil, fmt.Errorf("creating state machine %s: %w", name, err)
		}
		if got := aws.ToString(out.StateMachineArn); got != arns[name] {
			return nil, fmt.Errorf("state machine %s was created as %s, expected %s", name, got, arns[name])
		}
		e.StateMachines[name] = arns[name]
	}
	return e, nil
}

// ReadyLine ends what `make up` prints: everything is up.
const ReadyLine = "# ready: Ctrl-C stops everything"

// machinePrefix starts the name of every local state machine.
const machinePrefix = "sdsops-"

// binaryPath is where function fn's bootstrap binary was built.
func (e *Env) binaryPath(fn string) string { return filepath.Join(e.binDir, fn, "bootstrap") }

// SetFunctionTimeout (re)registers function fn with an invocation timeout:
// past it the process is killed and the invocation fails with
// Sandbox.Timedout, as on Lambda.
func (e *Env) SetFunctionTimeout(fn string, d time.Duration) error {
	return e.Stack.Lambda.RegisterBinary(fn, localaws.BinaryFunction{
		Path: e.binaryPath(fn), Env: e.fnEnv, Timeout: d, MaxInstances: 6,
	})
}

// BuildFunctions compiles every function for this machine into
// dir/<name>/bootstrap, with the tags used for Lambda.
func BuildFunctions(ctx context.Context, repoRoot, dir string) error {
	fns, err := FunctionNames(repoRoot)
	if err != nil {
		return err
	}
	for _, fn := range fns {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath",
			"-o", filepath.Join(dir, fn, "bootstrap"), "./functions/"+fn)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", fn, err, out)
		}
	}
	return nil
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`)

// LoadDefinition reads an ASL file and fills in its ${Placeholders} as
// CloudFormation's DefinitionSubstitutions would, with resolve's values.
func LoadDefinition(path string, resolve func(placeholder string) (string, bool)) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var missing []string
	def := placeholder.ReplaceAllStringFunc(string(b), func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		v, ok := resolve(name)
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: unknown placeholders %s (expected <Name>FunctionArn for functions/<name>, <Name>StateMachineArn for statemachine/<name>.asl.json)", path, strings.Join(missing, ", "))
	}
	if !json.Valid([]byte(def)) {
		return "", fmt.Errorf("%s is not valid JSON after substitution", path)
	}
	return def, nil
}

// Stop stops everything Start started. It is safe to call more than once.
func (e *Env) Stop() {
	if e.Stack != nil {
		e.Stack.Stop()
	}
	if e.emuServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		e.emuServer.Shutdown(ctx)
		cancel()
	}
	if e.binDir != "" {
		os.RemoveAll(e.binDir)
	}
}

// Execution is a finished (or still running) execution.
type Execution struct {
	ARN     string
	Status  sfntypes.ExecutionStatus
	Output  map[string]any // parsed: moto writes Python-style JSON
	Error   string
	Cause   string
	History []sfntypes.HistoryEvent
}

// StartExecution starts machine with input under a unique name.
func (e *Env) StartExecution(ctx context.Context, machine, name string, input any) (string, error) {
	arn, ok := e.StateMachines[machine]
	if !ok {
		return "", fmt.Errorf("no state machine %q", machine)
	}
	b, err := json.Marshal(input)
	if err != nil {
		return "", err
	}
	out, err := e.SFN.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(arn), Name: aws.String(name), Input: aws.String(string(b))})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ExecutionArn), nil
}

// Wait polls an execution until it stops running (or ctx ends), calling
// progress with every new history event.
func (e *Env) Wait(ctx context.Context, arn string, progress func(sfntypes.HistoryEvent)) (*Execution, error) {
	seen := 0
	for {
		d, err := e.Describe(ctx, arn)
		if err != nil {
			return nil, err
		}
		hist, err := e.History(ctx, arn)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			for _, ev := range hist[seen:] {
				progress(ev)
			}
		}
		seen = len(hist)
		if d.Status != sfntypes.ExecutionStatusRunning {
			x := &Execution{ARN: arn, Status: d.Status, Error: aws.ToString(d.Error), Cause: aws.ToString(d.Cause), History: hist}
			if d.Output != nil {
				if err := json.Unmarshal([]byte(*d.Output), &x.Output); err != nil {
					return nil, fmt.Errorf("execution output is not JSON: %w", err)
				}
			}
			return x, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Run starts an execution and waits for it.
func (e *Env) Run(ctx context.Context, machine, name string, input any) (*Execution, error) {
	arn, err := e.StartExecution(ctx, machine, name, input)
	if err != nil {
		return nil, err
	}
	return e.Wait(ctx, arn, nil)
}

// History returns every event of an execution, following pagination.
func (e *Env) History(ctx context.Context, arn string) ([]sfntypes.HistoryEvent, error) {
	var all []sfntypes.HistoryEvent
	in := &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: 1000}
	for {
		page, err := reread(ctx, func() (*sfn.GetExecutionHistoryOutput, error) { return e.SFN.GetExecutionHistory(ctx, in) })
		if err != nil {
			return nil, err
		}
		all = append(all, page.Events...)
		if page.NextToken == nil {
			return all, nil
		}
		in.NextToken = page.NextToken
	}
}

// Describe is DescribeExecution of arn.
func (e *Env) Describe(ctx context.Context, arn string) (*sfn.DescribeExecutionOutput, error) {
	return reread(ctx, func() (*sfn.DescribeExecutionOutput, error) {
		return e.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	})
}

// reread repeats a read whose answer arrived cut short: on a loaded
// machine moto now and then ends a 200 answer before its body is whole,
// and a read is safe to repeat.
func reread[T any](ctx context.Context, read func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		out, err := read()
		var de *smithy.DeserializationError
		if err == nil || attempt == 3 || !errors.As(err, &de) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(100 * time.Millisecond * time.Duration(attempt)):
		}
	}
}
