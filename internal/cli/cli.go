// Package cli is the operator's command line, sdsops: status (headed by
// the latest night), the nights' reports, archives, backups, restores,
// rollbacks, conversions, the next night's plan, and following an
// execution. It calls the stack's REST API with SigV4 (service
// execute-api) and the standard credential chain, and reads what the API
// has no route for (catalog records, nightly reports) from the archive
// bucket.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes of Run.
const (
	ExitOK = 0
	// ExitFailed: a request failed, or the execution followed (wait,
	// --wait) did not succeed, or a dry run found the operation would fail.
	ExitFailed = 1
	// ExitUsage: the command line is wrong, or names what does not exist
	// (an unknown or ambiguous data source, an archive key that is not
	// one of its archives), or a confirmation is missing.
	ExitUsage = 2
	// ExitPastRPO: status found a data source past the recovery-point
	// objective.
	ExitPastRPO = 3
)

// exitError carries an exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, args...)}
}

// IO is where a command writes and what environment it reads.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// verb is one subcommand.
type verb struct {
	summary string
	usage   string
	run     func(ctx context.Context, a *app, args []string) error
}

func verbs() map[string]verb {
	return map[string]verb{
		"status":   {"last night's outcome, then every data source, worst first; exits 3 when one is past the RPO", "status [--rpo D]", runStatus},
		"report":   {"a night's report (default: the latest)", "report [--date YYYY-MM-DD] [--execution NAME]", runReport},
		"archives": {"a data source's archives, newest first", "archives NAME [--limit N]", runArchives},
		"backup":   {"back up a data source now", "backup NAME [--version JOBID] [--wait]", runBackup},
		"restore":  {"restore an archive into SDS (--dry-run first)", "restore NAME [--archive KEY | --date YYYY-MM-DD] [--target NAME2] [--dry-run] [--confirm NAME] [--wait] [...]", runRestore},
		"rollback": {"publish a prior version again", "rollback NAME VERSION --confirm NAME [--wait]", runRollback},
		"convert":  {"convert archives to GeoJSON (one, a data source's, or a prefix)", "convert (NAME | --key KEY | --prefix P) [--wait]", runConvert},
		"night":    {"the plan the next nightly run would make", "night --dry-run [--include P] [--exclude P]", runNight},
		"wait":     {"follow an execution until it ends, step by step", "wait EXECUTION_ARN [--timeout D]", runWait},
	}
}

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, stdio IO) int {
	if stdio.Getenv == nil {
		stdio.Getenv = os.Getenv
	}
	a := &app{io: stdio}
	global := flag.NewFlagSet("sdsops", flag.ContinueOnError)
	global.SetOutput(stdio.Stderr)
	a.commonFlags(global)
	global.Usage = func() { a.usage(global) }
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		a.usage(global)
		return ExitUsage
	}
	v, ok := verbs()[rest[0]]
	if !ok {
		fmt.Fprintf(stdio.Stderr, "sdsops: unknown command %q\n", rest[0])
		a.usage(global)
		return ExitUsage
	}
	err := v.run(ctx, a, rest[1:])
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	var ee *exitError
	var ae *APIError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &ae) && ae.Status == 400:
		code = ExitUsage // the API refused what was asked
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(stdio.Stderr, "sdsops %s: %v\n", rest[0], err)
	}
	return code
}

// errSilent ends a command whose output already said why.
var errSilent = errors.New("already reported")

func (a *app) usage(fs *flag.FlagSet) {
	w := a.io.Stderr
	fmt.Fprintln(w, "usage: sdsops [flags] COMMAND [args]")
	fmt.Fprintln(w, "\ncommands:")
	all := verbs()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n            sdsops %s\n", n, all[n].summary, all[n].usage)
	}
	fmt.Fprintln(w, "\nflags (before or after the command):")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nexit codes: 0 ok, 1 failed, 2 usage or unknown name, 3 status: past the RPO")
}

// parse parses a verb's flags, which may come before, between or after
// its positional arguments, and returns the positional ones.
func (a *app) parse(fs *flag.FlagSet, args []string, least, most int, usage string) ([]string, error) {
	fs.SetOutput(a.io.Stderr)
	a.commonFlags(fs)
	fs.Usage = func() { fmt.Fprintf(a.io.Stderr, "usage: sdsops %s\n", usage); fs.PrintDefaults() }
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &exitError{ExitUsage, errSilent}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) < least || len(pos) > most {
		fs.Usage()
		return nil, usageErrorf("%d argument(s) given, want %s", len(pos), argCount(least, most))
	}
	return pos, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

func argCount(least, most int) string {
	if least == most {
		return fmt.Sprint(least)
	}
	return fmt.Sprintf("%d to %d", least, most)
}
