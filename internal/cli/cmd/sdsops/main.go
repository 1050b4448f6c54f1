// Command sdsops is the operator's command line for an sdsops stack:
// status, archives, backup, restore, rollback, convert, night --dry-run
// and wait. `sdsops -h` lists them; the README's "The operator CLI"
// section describes them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sdsops/sdsops/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
