package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/task"
)

// RestoreDryRun is the JSON form of `sdsops restore --dry-run`: the
// archive the restore would load, as its prepare step chooses and checks
// it, and what would happen to the target.
type RestoreDryRun struct {
	DryRun         bool            `json:"dryRun"`
	Archive        task.ArchiveRef `json:"archive"`
	ArchiveDate    string          `json:"archiveDate"` // YYYY-MM-DD of its download job
	TargetName     string          `json:"targetName"`
	TargetExists   bool            `json:"targetExists"`
	TargetAccessID string          `json:"targetAccessId,omitempty"`
	BackupFirst    bool            `json:"backupFirst"`
	Staging        bool            `json:"staging"`
	Publish        bool            `json:"publish"`
	Public         bool            `json:"public"`
	WillHappen     []string        `json:"willHappen"`
	Request        map[string]any  `json:"request"` // the body the restore would send to the API
}

func runRestore(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	key := fs.String("archive", "", "the archive's key (sdsops archives lists them); default: the newest verified archive")
	date := fs.String("date", "", "the newest archive of that day (YYYY-MM-DD, UTC)")
	target := fs.String("target", "", "load into this data source name instead (default: the archived one)")
	staging := fs.Bool("staging", false, "load as a staged version, not published")
	publish := fs.Bool("publish", false, "with --staging: publish the staged version afterwards")
	public := fs.Bool("public", false, "make the restored data source public (default: private)")
	force := fs.Bool("force", false, "restore an unverified or unrestorable archive anyway")
	noBackup := fs.Bool("no-backup-first", false, "do not back up the data source it replaces first")
	dryRun := fs.Bool("dry-run", false, "show the archive and what would happen, start nothing")
	confirm := fs.String("confirm", "", "the target name again (required without --dry-run)")
	wait := waitFlag(fs)
	pos, err := a.parse(fs, args, 1, 1, verbs()["restore"].usage)
	if err != nil {
		return err
	}
	if *key != "" && *date != "" {
		return usageErrorf("give --archive or --date, not both")
	}
	if *date != "" {
		if _, err := time.Parse(time.DateOnly, *date); err != nil {
			return usageErrorf("--date %q: want YYYY-MM-DD", *date)
		}
	}
	id, _, err := a.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	var jobID string
	if *key != "" {
		owner, err := keyOwner(*key)
		if err != nil {
			return err
		}
		if !strings.EqualFold(owner.AccessID, id.AccessID) || !strings.EqualFold(owner.Name, id.Name) {
			return usageErrorf("archive %s is one of %s, not of %s", *key, owner, id)
		}
		jobID = strings.TrimSuffix(strings.TrimSuffix(path.Base(*key), archive.ManifestSuffix), archive.ObjectSuffix)
	}
	targetName := id.Name
	if *target != "" {
		targetName = *target
	}
	body := map[string]any{"confirm": targetName}
	for k, v := range map[string]string{"versionJobId": jobID, "date": *date, "targetName": *target} {
		if v != "" {
			body[k] = v
		}
	}
	for k, v := range map[string]bool{"staging": *staging, "publish": *publish, "public": *public, "force": *force} {
		if v {
			body[k] = true
		}
	}
	if *noBackup {
		body["backupFirst"] = false
	}
	if *dryRun {
		return a.restoreDryRun(ctx, id, *key, body)
	}
	if *confirm != targetName {
		return usageErrorf("a restore loads an archive into %s (run it with --dry-run first to see what happens): repeat the name with --confirm %s", targetName, targetName)
	}
	return a.start(ctx, "restore", "POST", dsPath(id)+"/restores", id, body, *wait)
}

// restoreDryRun asks the restore function's prepare step, which chooses
// and checks the archive and looks the target up in SDS, sending nothing.
func (a *app) restoreDryRun(ctx context.Context, id dsID, key string, body map[string]any) error {
	ev := task.RestoreEvent{Action: task.ActionPrepare, ArchiveKey: key}
	if key == "" {
		ev.AccessID, ev.DataSourceName = id.AccessID, id.Name
		ev.Date, _ = body["date"].(string)
	}
	ev.TargetName, _ = body["targetName"].(string)
	ev.Staging, _ = body["staging"].(bool)
	ev.Public, _ = body["public"].(bool)
	ev.Force, _ = body["force"].(bool)
	var plan task.RestorePlan
	if err := a.invoke(ctx, envRestore, "RestoreFunction", ev, &plan); err != nil {
		return fmt.Errorf("the restore would not start: %w", err)
	}
	d := RestoreDryRun{DryRun: true, Archive: plan.Archive, TargetName: plan.TargetName, TargetExists: plan.TargetExists,
		TargetAccessID: plan.TargetAccessID, BackupFirst: body["backupFirst"] != false, Staging: ev.Staging,
		Publish: body["publish"] == true, Public: ev.Public, Request: body}
	if r, err := archive.NewLayout("").ParseKey(keyTail(plan.Archive.Key)); err == nil {
		d.ArchiveDate = r.Day.Format(time.DateOnly)
	}
	d.WillHappen = willHappen(d)
	if a.opts.json {
		return writeJSON(a.io.Stdout, d)
	}
	printRestoreDryRun(a.io.Stdout, d)
	return nil
}

// keyTail is the part of an archive key from the data source's folders
// on, under the default prefix, so that any prefix parses.
func keyTail(key string) string {
	parts := strings.Split(key, "/")
	if len(parts) < 6 {
		return key
	}
	return archive.DefaultPrefix + strings.Join(parts[len(parts)-6:], "/")
}

func willHappen(d RestoreDryRun) []string {
	var w []string
	t := d.TargetName
	if d.TargetExists {
		if d.BackupFirst {
			w = append(w, fmt.Sprintf("%s exists (accessId %s): its published version is backed up first; if that backup fails, nothing else happens", t, d.TargetAccessID))
		} else {
			w = append(w, fmt.Sprintf("%s exists (accessId %s): it is NOT backed up first (--no-backup-first)", t, d.TargetAccessID))
		}
		if d.Staging {
			w = append(w, "the archive is loaded as a staged version of "+t+"; the published version stays as it is")
		} else {
			w = append(w, "the archive is loaded as a new version of "+t+" and published, keeping its accessId; the version it replaces becomes a prior one (sdsops rollback can bring it back)")
		}
	} else {
		w = append(w, fmt.Sprintf("no data source named %s exists: the load creates it with a NEW accessId, which applications must be given (the output names it)", t))
	}
	switch {
	case d.Staging && d.Publish:
		w = append(w, "the staged version is then published")
	case !d.Staging && d.Public:
		w = append(w, "the restored data source is public")
	case !d.Staging:
		w = append(w, "the restored data source is private (--public to make it public)")
	}
	return append(w, "nothing was started (dry run)")
}

func printRestoreDryRun(w io.Writer, d RestoreDryRun) {
	ar := d.Archive
	fmt.Fprintf(w, "restore of %s/%s into %s — dry run\n", ar.AccessID, ar.DataSourceName, d.TargetName)
	fmt.Fprintf(w, "archive     s3://%s/%s\n", ar.Bucket, ar.Key)
	fmt.Fprintf(w, "            job %s of %s, %s, %d entities, sha256 %s\n", ar.JobID, orDash(d.ArchiveDate), size(ar.Bytes), ar.EntityCount, clip(ar.SHA256, 16))
	verified := yesNo(ar.Verified)
	if len(ar.Problems) > 0 {
		verified += " (" + strings.Join(ar.Problems, "; ") + ")"
	}
	restorable := tristate(ar.Restorable)
	if len(ar.RestoreProblems) > 0 {
		restorable += " (" + strings.Join(ar.RestoreProblems, "; ") + ")"
	}
	fmt.Fprintf(w, "verified    %s\nrestorable  %s\n", verified, restorable)
	fmt.Fprintln(w, "what happens:")
	for _, s := range d.WillHappen {
		fmt.Fprintf(w, "  - %s\n", s)
	}
	fmt.Fprintf(w, "to do it: sdsops restore %s/%s --archive %s%s --confirm %s\n", ar.AccessID, ar.DataSourceName, ar.Key, restoreFlags(d.Request), d.TargetName)
}

// restoreFlags repeats a dry run's options as flags (the archive is
// named by its key).
func restoreFlags(body map[string]any) string {
	var b strings.Builder
	if v, ok := body["targetName"].(string); ok {
		b.WriteString(" --target " + v)
	}
	for _, f := range []string{"staging", "publish", "public", "force"} {
		if body[f] == true {
			b.WriteString(" --" + f)
		}
	}
	if body["backupFirst"] == false {
		b.WriteString(" --no-backup-first")
	}
	return b.String()
}
