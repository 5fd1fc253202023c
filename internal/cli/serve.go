package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// serveMain runs a Cairn member until ctx ends (SIGINT/SIGTERM) or a fatal
// error. A configuration or start-up problem is one sentence on stderr and
// exit code 1 (2 for a bad flag). A clean shutdown exits 0.
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := daemon.ParseConfig(args, os.Environ(), stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "cairn serve: %v\n", err)
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "cairn serve: %v\n", err)
		return exitUsage
	}
	cfg.Failpoints = os.Getenv("CAIRN_FAILPOINTS")
	logger := slog.New(cfg.LogHandler(stderr))
	d, err := daemon.Start(cfg, logger, vfs.OS())
	if err != nil {
		fmt.Fprintf(stderr, "cairn serve: %v\n", err)
		return exitError
	}
	select {
	case <-ctx.Done():
		d.Stop()
		return exitOK
	case err := <-d.Err():
		fmt.Fprintf(stderr, "cairn serve: member stopped: %v\n", err)
		d.Stop()
		return exitError
	}
}
