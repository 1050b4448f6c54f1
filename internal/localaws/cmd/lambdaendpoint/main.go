// Command lambdaendpoint runs moto and a local Lambda invoke endpoint in front of it, with
// the given bootstrap executables registered as functions, until interrupted.
//
//	lambdaendpoint -fn delete=bin/delete/bootstrap -fn copytos3=bin/copytos3/bootstrap -wait-scale 0
//
// It prints AWS_ENDPOINT_URL=... once ready; point AWS clients at that URL (S3 with
// path-style addressing). Function logs go to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sdsops/sdsops/internal/localaws"
)

// pairs collects repeated NAME=VALUE flags.
type pairs map[string]string

func (p pairs) String() string { return fmt.Sprint(map[string]string(p)) }

func (p pairs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	p[k] = v
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lambdaendpoint:", err)
		os.Exit(1)
	}
}

func run() error {
	funcs, env := pairs{}, pairs{}
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the endpoint")
	waitScale := flag.Float64("wait-scale", -1, "scale of Step Functions Wait/Retry sleeps (0 = none; default: $SDSOPS_SFN_WAIT_SCALE or 1)")
	timeout := flag.Duration("timeout", localaws.DefaultTimeout, "invocation timeout of each function")
	python := flag.String("python", "", "python interpreter with moto (default $SDSOPS_PYTHON or python3)")
	quiet := flag.Bool("quiet", false, "do not print function logs")
	flag.Var(funcs, "fn", "function NAME=PATH of a bootstrap executable (repeatable)")
	flag.Var(env, "env", "environment variable NAME=VALUE for every function (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var logs io.Writer = os.Stderr
	if *quiet {
		logs = nil
	}
	opts := localaws.StackOptions{
		Moto:   localaws.MotoOptions{Python: *python, WaitScale: *waitScale, SkipWaits: *waitScale == 0},
		Lambda: localaws.LambdaOptions{Addr: *addr, Log: logs},
	}
	start := time.Now()
	st, err := localaws.StartStack(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Stop()
	for name, path := range funcs {
		fn := localaws.BinaryFunction{Path: path, Env: env, Timeout: *timeout}
		if err := st.Lambda.RegisterBinary(name, fn); err != nil {
			return err
		}
	}
	fmt.Printf("AWS_ENDPOINT_URL=%s\n", st.Endpoint())
	fmt.Fprintf(os.Stderr, "lambdaendpoint: ready in %s (moto %s, %d functions); Ctrl-C stops\n",
		time.Since(start).Round(time.Millisecond), st.Moto.Endpoint(), len(funcs))
	select {
	case <-ctx.Done():
	case <-st.Moto.Done():
		return fmt.Errorf("moto exited: %s", lastLine(st.Moto.Output()))
	}
	return st.Stop()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
