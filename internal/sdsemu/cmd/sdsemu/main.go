// Command sdsemu runs the Spatial Data Services emulator. When it listens it prints one line,
// SDSEMU_URL=http://HOST:PORT, on stdout; requests are logged to stderr with keys redacted.
// It stops cleanly on SIGINT or SIGTERM.
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
	"syscall"
	"time"

	"github.com/sdsops/sdsops/internal/sdsemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "sdsemu:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sdsemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	fixture := fs.String("fixture", "", "JSON fixture with accounts and data sources (default: the embedded sample)")
	jobDuration := fs.Duration("job-duration", 2*time.Second, "time a delete or set-public job stays Pending (negative: never by time)")
	downloadDuration := fs.Duration("download-job-duration", 2*time.Second, "time a download job stays Pending (negative: never by time)")
	polls := fs.Int("complete-after-polls", 0, "complete a job on its Nth poll even before its duration (0: off)")
	manual := fs.Bool("manual", false, "jobs move only through the admin API")
	faultsFile := fs.String("faults", "", "JSON file with an array of faults to arm at start")
	publicURL := fs.String("public-url", "", "base URL put in links (default: the address a request was sent to)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	cfg := sdsemu.DefaultConfig()
	if *fixture != "" {
		var err error
		if cfg, err = sdsemu.LoadFixture(*fixture); err != nil {
			return err
		}
	}
	cfg.JobDuration = *jobDuration
	cfg.DownloadJobDuration = *downloadDuration
	cfg.CompleteAfterPolls = *polls
	cfg.Manual = *manual
	cfg.PublicBaseURL = *publicURL
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	if *faultsFile != "" {
		data, err := os.ReadFile(*faultsFile)
		if err != nil {
			return fmt.Errorf("read faults: %w", err)
		}
		if cfg.Faults, err = sdsemu.ParseFaults(data); err != nil {
			return fmt.Errorf("%s: %w", *faultsFile, err)
		}
	}
	emu, err := sdsemu.New(cfg)
	if err != nil {
		return err
	}
	defer emu.Close() // uploaded data sources live in a temporary directory

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "SDSEMU_URL=http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
