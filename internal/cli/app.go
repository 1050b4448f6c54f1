package cli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/smithy-go/logging"

	"github.com/sdsops/sdsops/internal/nightly"
)

// Environment variables that replace a stack lookup (make up prints
// them: there is no CloudFormation locally).
const (
	envAPI       = "SDSOPS_API"               // the API's base URL (stack output ApiUrl)
	envBucket    = "SDSOPS_BUCKET"            // the archive bucket (output ArchiveBucketName)
	envDiscover  = "SDSOPS_DISCOVER_FUNCTION" // the discover function (resource DiscoverFunction)
	envRestore   = "SDSOPS_RESTORE_FUNCTION"  // the restore function (resource RestoreFunction)
	envConvert   = "SDSOPS_CONVERT_MACHINE"   // the convert state machine (output ConvertStateMachineArn)
	envStackName = "SDSOPS_STACK_NAME"
	envHeartbeat = "SDSOPS_HEARTBEAT_HOURS" // replaces the stack parameter NightlyHeartbeatHours
	defaultStack = "sdsops"
)

// options are the flags every command takes.
type options struct {
	stack    string
	api      string
	json     bool
	interval time.Duration
}

// app is one run of the command line: its options, and the clients built
// on first use.
type app struct {
	io   IO
	opts options
	// flagsSet: the options have their defaults; a verb's flags then
	// only override what its command line gives.
	flagsSet bool

	cfg       *aws.Config
	stackInfo *stackInfo
	api       *apiClient
}

func (a *app) commonFlags(fs *flag.FlagSet) {
	if !a.flagsSet {
		a.flagsSet = true
		a.opts = options{stack: a.io.Getenv(envStackName), interval: 2 * time.Second}
		if a.opts.stack == "" {
			a.opts.stack = defaultStack
		}
	}
	fs.Func("stack-name", "the CloudFormation stack whose outputs locate the API and the bucket (default "+defaultStack+", or $"+envStackName+")", func(v string) error {
		a.opts.stack = v
		return nil
	})
	fs.Func("api", "the API's base URL, ending with the stage (default: the stack output ApiUrl, or $"+envAPI+")", func(v string) error {
		a.opts.api = v
		return nil
	})
	fs.BoolFunc("json", "print JSON for scripts instead of text", func(v string) error {
		b, err := strconv.ParseBool(v)
		a.opts.json = b
		return err
	})
	fs.Func("interval", "how often wait and --wait poll (default 2s)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 2s")
		}
		a.opts.interval = d
		return nil
	})
}

// awsConfig is the standard credential chain and region (profile,
// environment, SSO, instance role), loaded once.
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS credentials and region: %w", err)
	}
	a.cfg = &cfg
	return cfg, nil
}

// localEndpoint: AWS_ENDPOINT_URL points the SDK at a local stack (make
// up), whose S3 needs path-style addressing.
func (a *app) localEndpoint() bool { return a.io.Getenv("AWS_ENDPOINT_URL") != "" }

func (a *app) s3(ctx context.Context) (*s3.Client, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = a.localEndpoint()
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}

func (a *app) sfn(ctx context.Context) (*sfn.Client, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return sfn.NewFromConfig(cfg), nil
}

func (a *app) lambda(ctx context.Context) (*lambda.Client, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	// Quiet: a local endpoint sends no response checksum, which the SDK
	// would log on every call.
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.Logger = logging.Nop{} }), nil
}

// stackInfo is what DescribeStacks says of the stack.
type stackInfo struct {
	outputs, params map[string]string
}

// StackReader is the part of CloudFormation the CLI reads.
type StackReader interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackResource(ctx context.Context, in *cloudformation.DescribeStackResourceInput, opts ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceOutput, error)
}

func (a *app) cloudformation(ctx context.Context) (StackReader, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return cloudformation.NewFromConfig(cfg), nil
}

func (a *app) stack(ctx context.Context) (*stackInfo, error) {
	if a.stackInfo != nil {
		return a.stackInfo, nil
	}
	cf, err := a.cloudformation(ctx)
	if err != nil {
		return nil, err
	}
	out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(a.opts.stack)})
	if err != nil {
		return nil, fmt.Errorf("reading the outputs of stack %q (--stack-name; or set %s and %s): %w", a.opts.stack, envAPI, envBucket, err)
	}
	if len(out.Stacks) == 0 {
		return nil, fmt.Errorf("no stack %q", a.opts.stack)
	}
	info := &stackInfo{outputs: map[string]string{}, params: map[string]string{}}
	for _, o := range out.Stacks[0].Outputs {
		info.outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	for _, p := range out.Stacks[0].Parameters {
		info.params[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	a.stackInfo = info
	return info, nil
}

// locate is the value of env when set, else the stack output.
func (a *app) locate(ctx context.Context, env, output string) (string, error) {
	if v := strings.TrimSpace(a.io.Getenv(env)); v != "" {
		return v, nil
	}
	st, err := a.stack(ctx)
	if err != nil {
		return "", err
	}
	v := st.outputs[output]
	if v == "" {
		return "", fmt.Errorf("stack %q has no output %s (set %s)", a.opts.stack, output, env)
	}
	return v, nil
}

func (a *app) bucket(ctx context.Context) (string, error) {
	return a.locate(ctx, envBucket, "ArchiveBucketName")
}

// function is the physical name of one of the stack's functions.
func (a *app) function(ctx context.Context, env, logicalID string) (string, error) {
	if v := strings.TrimSpace(a.io.Getenv(env)); v != "" {
		return v, nil
	}
	cf, err := a.cloudformation(ctx)
	if err != nil {
		return "", err
	}
	out, err := cf.DescribeStackResource(ctx, &cloudformation.DescribeStackResourceInput{
		StackName: aws.String(a.opts.stack), LogicalResourceId: aws.String(logicalID)})
	if err != nil || out.StackResourceDetail == nil {
		return "", fmt.Errorf("finding %s in stack %q (or set %s): %w", logicalID, a.opts.stack, env, err)
	}
	return aws.ToString(out.StackResourceDetail.PhysicalResourceId), nil
}

// rpo is the stack's NightlyRpoHours; the nightly default when the API
// is given directly (make up: no stack to ask).
func (a *app) rpo(ctx context.Context) time.Duration {
	return a.stackHours(ctx, "NightlyRpoHours", "", nightly.DefaultRPO)
}

// heartbeat is how old the latest night's report may be before status
// calls it overdue: the stack's NightlyHeartbeatHours (the heartbeat
// alarm's window), or $SDSOPS_HEARTBEAT_HOURS (make up has no stack).
func (a *app) heartbeat(ctx context.Context) time.Duration {
	return a.stackHours(ctx, "NightlyHeartbeatHours", envHeartbeat, nightly.DefaultHeartbeat)
}

// stackHours is a whole number of hours: the environment variable env
// when set, else the stack's parameter param when the stack is used,
// else def.
func (a *app) stackHours(ctx context.Context, param, env string, def time.Duration) time.Duration {
	if env != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(a.io.Getenv(env))); err == nil && n > 0 {
			return time.Duration(n) * time.Hour
		}
	}
	if a.io.Getenv(envAPI) == "" && a.opts.api == "" {
		if st, err := a.stack(ctx); err == nil {
			if n, err := strconv.Atoi(st.params[param]); err == nil && n > 0 {
				return time.Duration(n) * time.Hour
			}
		}
	}
	return def
}
