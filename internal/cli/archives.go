package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sdsops/sdsops/internal/archive"
)

// Archives is the JSON form of `sdsops archives`.
type Archives struct {
	AccessID       string        `json:"accessId"`
	DataSourceName string        `json:"dataSourceName"`
	Archives       []ArchiveInfo `json:"archives"`
	Truncated      bool          `json:"truncated"`
}

// ArchiveInfo is one archive, from its manifest.
type ArchiveInfo struct {
	Key          string    `json:"key"`
	VersionJobID string    `json:"versionJobId"`
	JobID        string    `json:"jobId"`
	FinishedAt   time.Time `json:"finishedAt"`
	Bytes        int64     `json:"bytes"`
	EntityCount  int64     `json:"entityCount"`
	Staging      bool      `json:"staging"`
	Verified     bool      `json:"verified"`
	// Restorable is null when the archive predates the check (unknown).
	Restorable *bool `json:"restorable"`
	Converted  bool  `json:"converted"`
}

func runArchives(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("archives", flag.ContinueOnError)
	limit := fs.Int("limit", 50, "at most this many, newest first (1-200)")
	pos, err := a.parse(fs, args, 1, 1, verbs()["archives"].usage)
	if err != nil {
		return err
	}
	id, _, err := a.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	list, err := a.archives(ctx, id, *limit)
	if err != nil {
		return err
	}
	if a.opts.json {
		return writeJSON(a.io.Stdout, list)
	}
	printArchives(a.io.Stdout, list)
	return nil
}

// archives is GET …/archives: the data source's manifests, newest first.
func (a *app) archives(ctx context.Context, id dsID, limit int) (*Archives, error) {
	c, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	var raw struct {
		AccessID       string            `json:"accessId"`
		DataSourceName string            `json:"dataSourceName"`
		Archives       []json.RawMessage `json:"archives"`
		Truncated      bool              `json:"truncated"`
	}
	if err := c.do(ctx, "GET", dsPath(id)+"/archives?limit="+strconv.Itoa(limit), nil, &raw); err != nil {
		return nil, fmt.Errorf("listing the archives of %s: %w", id, err)
	}
	out := &Archives{AccessID: raw.AccessID, DataSourceName: raw.DataSourceName, Archives: []ArchiveInfo{}, Truncated: raw.Truncated}
	for _, r := range raw.Archives {
		var m archive.Manifest
		if err := json.Unmarshal(r, &m); err != nil {
			return nil, fmt.Errorf("an archive of %s: %w", id, err)
		}
		out.Archives = append(out.Archives, ArchiveInfo{Key: m.Key, VersionJobID: m.VersionJobID, JobID: m.JobID,
			FinishedAt: m.FinishedAt, Bytes: m.Bytes, EntityCount: m.EntityCount, Staging: m.Staging,
			Verified: m.Verified, Restorable: m.Restorable, Converted: len(m.Conversion) > 0 && string(m.Conversion) != "null"})
	}
	return out, nil
}

func printArchives(w io.Writer, l *Archives) {
	fmt.Fprintf(w, "archives of %s/%s, newest first\n", l.AccessID, l.DataSourceName)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDATE\tSIZE\tENTITIES\tVERIFIED\tRESTORABLE\tCONVERTED\tKEY")
	for _, x := range l.Archives {
		// A backup of "the published version" that did not name it
		// records no version; its download job stands for it.
		version := x.VersionJobID
		if version == "" {
			version = "job " + x.JobID
		}
		if x.Staging {
			version += " (staged)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", version, x.FinishedAt.UTC().Format("2006-01-02 15:04Z"),
			size(x.Bytes), x.EntityCount, yesNo(x.Verified), tristate(x.Restorable), yesNo(x.Converted), x.Key)
	}
	tw.Flush()
	more := ""
	if l.Truncated {
		more = " (more: --limit)"
	}
	fmt.Fprintf(w, "%s%s\n", plural(len(l.Archives), "archive", "archives"), more)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func tristate(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return yesNo(*b)
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
