// Package e2e runs the built cairn binary as real processes: kill -9,
// restarts, on-disk corruption, and etcdctl against it.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/cairn-db/cairn/internal/testutil"
)

var cairnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-bin")
	if err != nil {
		panic(err)
	}
	cairnBin, err = testutil.BuildCairn(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type (
	proc        = testutil.Proc
	procCluster = testutil.ProcCluster
)

func startProcCluster(t *testing.T, n int, extra ...string) *procCluster {
	return testutil.StartProcCluster(t, cairnBin, n, extra...)
}
