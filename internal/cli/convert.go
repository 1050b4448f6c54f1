package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sdsops/sdsops/internal/archive"
)

func runConvert(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	key := fs.String("key", "", "one archive: its key (…/<jobId>.xml) or its manifest's")
	prefix := fs.String("prefix", "", "every archive under this prefix of the bucket (a backfill; starts the convert state machine directly)")
	concurrency := fs.Int("max-concurrency", 0, "with --prefix: archives converted at once (default 4)")
	wait := waitFlag(fs)
	var pos []string
	var err error
	if pos, err = a.parse(fs, args, 0, 1, verbs()["convert"].usage); err != nil {
		return err
	}
	given := len(pos)
	if *key != "" {
		given++
	}
	if *prefix != "" {
		given++
	}
	if given != 1 {
		return usageErrorf("give one of NAME, --key KEY or --prefix PREFIX")
	}
	switch {
	case *key != "":
		id, err := keyOwner(*key)
		if err != nil {
			return err
		}
		return a.start(ctx, "convert", "POST", dsPath(id)+"/conversions", id, map[string]any{"key": *key}, *wait)
	case *prefix != "":
		return a.convertPrefix(ctx, *prefix, *concurrency, *wait)
	}
	id, _, err := a.resolve(ctx, pos[0])
	if err != nil {
		return err
	}
	return a.start(ctx, "convert", "POST", dsPath(id)+"/conversions", id, map[string]any{}, *wait)
}

// keyOwner reads the data source out of an archive key: the folders
// <accessId>/<name>/<yyyy>/<mm>/<dd>/ above the file, whatever the
// prefix.
func keyOwner(key string) (dsID, error) {
	r, _, err := archive.NewLayout("").Parse(keyTail(key))
	if err != nil {
		return dsID{}, usageErrorf("%q is not an archive key (<prefix><accessId>/<name>/<yyyy>/<mm>/<dd>/<jobId>.xml)", key)
	}
	return dsID{AccessID: r.AccessID, Name: r.DataSourceName}, nil
}

// convertPrefix starts the convert state machine with a prefix: the API
// converts one data source's archives at most, a backfill is an
// operator's job (states:StartExecution on ConvertStateMachineArn).
func (a *app) convertPrefix(ctx context.Context, prefix string, concurrency int, wait bool) error {
	machine, err := a.locate(ctx, envConvert, "ConvertStateMachineArn")
	if err != nil {
		return err
	}
	c, err := a.sfn(ctx)
	if err != nil {
		return err
	}
	in := map[string]any{"prefix": prefix}
	if concurrency > 0 {
		in["maxConcurrency"] = concurrency
	}
	b, _ := json.Marshal(in)
	out, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Input: aws.String(string(b))})
	if err != nil {
		return fmt.Errorf("starting the conversion of s3 prefix %q: %w", prefix, err)
	}
	return a.started(ctx, Started{Operation: "convert of prefix " + prefix, ExecutionArn: aws.ToString(out.ExecutionArn), StartDate: aws.ToTime(out.StartDate).UTC()}, wait)
}
