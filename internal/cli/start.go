package cli

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// Started is the JSON form of a command that starts an execution.
type Started struct {
	Operation      string    `json:"operation"`
	AccessID       string    `json:"accessId,omitempty"`
	DataSourceName string    `json:"dataSourceName,omitempty"`
	ExecutionArn   string    `json:"executionArn"`
	StartDate      time.Time `json:"startDate"`
	// Execution is how it ended, with --wait.
	Execution *Execution `json:"execution,omitempty"`
}

// waitFlag adds --wait to a starting command.
func waitFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("wait", false, "follow the execution until it ends (exit 1 unless it succeeds)")
}

// start posts body to a start route of the API and reports the execution;
// with wait it follows it to its end.
func (a *app) start(ctx context.Context, op, method, path string, id dsID, body any, wait bool) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	var ans struct {
		ExecutionArn string  `json:"executionArn"`
		StartDate    float64 `json:"startDate"`
	}
	if err := c.do(ctx, method, path, body, &ans); err != nil {
		return fmt.Errorf("starting the %s of %s: %w", op, id, err)
	}
	return a.started(ctx, Started{Operation: op, AccessID: id.AccessID, DataSourceName: id.Name,
		ExecutionArn: ans.ExecutionArn, StartDate: seconds(ans.StartDate)}, wait)
}

// started reports an execution, and follows it with wait.
func (a *app) started(ctx context.Context, s Started, wait bool) error {
	if !a.opts.json {
		what := s.Operation
		if s.DataSourceName != "" {
			what += " of " + s.AccessID + "/" + s.DataSourceName
		}
		fmt.Fprintf(a.io.Stdout, "started %s\nexecution %s\n", what, s.ExecutionArn)
		if !wait {
			fmt.Fprintf(a.io.Stdout, "follow it: sdsops wait %s\n", s.ExecutionArn)
			return nil
		}
	}
	if wait {
		x, err := a.follow(ctx, s.ExecutionArn)
		if err != nil {
			return err
		}
		s.Execution = x
	}
	if a.opts.json {
		if err := writeJSON(a.io.Stdout, s); err != nil {
			return err
		}
	}
	if s.Execution != nil {
		return outcome(s.Execution)
	}
	return nil
}

func runBackup(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	version := fs.String("version", "", "the version (SDS job id) to back up; default: the published one")
	wait := waitFlag(fs)
	pos, err := a.parse(fs, args, 1, 1, verbs()["backup"].usage)
	if err != nil {
		return err
	}
	id, _, err := a.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	body := map[string]any{}
	if *version != "" {
		body["jobId"] = *version
	}
	return a.start(ctx, "backup", "POST", dsPath(id)+"/backups", id, body, *wait)
}

func runRollback(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	confirm := fs.String("confirm", "", "the data source's name again: a rollback changes the published version")
	wait := waitFlag(fs)
	pos, err := a.parse(fs, args, 2, 2, verbs()["rollback"].usage)
	if err != nil {
		return err
	}
	id, _, err := a.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	if *confirm != id.Name {
		return usageErrorf("a rollback publishes version %s of %s in place of the current one: repeat the name with --confirm %s", pos[1], id, id.Name)
	}
	return a.start(ctx, "rollback", "POST", dsPath(id)+"/rollbacks", id, map[string]any{"jobId": pos[1], "confirm": id.Name}, *wait)
}
