// Command shadow sends each Query API request of a list to SDS and to an
// sdsops endpoint and reports every difference in status, entities,
// order and values, pacing the SDS requests for its rate limit.
//
//	go run ./internal/shadow/cmd/shadow -sdsops https://query.example.com < urls.txt
//
// Exit status 0 when all answers agree, 1 when some differ, 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/sdsops/sdsops/internal/shadow"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shadow", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sds := fs.String("sds", "https://spatial.virtualearth.net", "base URL of SDS (scheme and host)")
	ops := fs.String("sdsops", "", "base URL of the sdsops query endpoint (required)")
	in := fs.String("in", "-", "file of request URLs, one a line (- for standard input)")
	rate := fs.Float64("rate", 5, "at most this many requests a second to SDS")
	retries := fs.Int("retries", 3, "retries of a request SDS throttles (429, 503), after its Retry-After")
	quiet := fs.Bool("q", false, "report only the requests that differ")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *ops == "" || *rate <= 0 {
		fmt.Fprintln(stderr, "shadow: -sdsops is required and -rate must be positive")
		return 2
	}
	r := stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(stderr, "shadow:", err)
			return 2
		}
		defer f.Close()
		r = f
	}
	reqs, err := shadow.ReadRequests(r)
	if err != nil {
		fmt.Fprintln(stderr, "shadow:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &shadow.Comparer{SDS: *sds, SDSOps: *ops, Interval: time.Duration(float64(time.Second) / *rate), MaxRetries: *retries}
	results, err := c.Compare(ctx, reqs)
	differ := 0
	for _, res := range results {
		if res.Same() {
			if !*quiet {
				fmt.Fprintf(stdout, "same     %d %s\n", res.StatusSDS, res.Request)
			}
			continue
		}
		differ++
		if res.Err != nil {
			fmt.Fprintf(stdout, "ERROR    %s\n  %v\n", res.Request, res.Err)
			continue
		}
		fmt.Fprintf(stdout, "DIFFERS  %s\n", res.Request)
		for _, d := range res.Differences {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	}
	fmt.Fprintf(stdout, "%d requests, %d alike, %d differ\n", len(results), len(results)-differ, differ)
	if err != nil {
		fmt.Fprintln(stderr, "shadow:", err)
		return 1
	}
	if differ > 0 {
		return 1
	}
	return 0
}
