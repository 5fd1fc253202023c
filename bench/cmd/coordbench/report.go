package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/cairn-db/cairn/bench/cluster"
)

// record is one case on one system: a row of the table, a line of -json.
type record struct {
	Case        string         `json:"case"`
	System      cluster.System `json:"system"`
	Clients     int            `json:"clients"`
	Leases      int            `json:"leases,omitempty"` // keepalive only
	Skipped     string         `json:"skipped,omitempty"`
	Failure     string         `json:"failure,omitempty"` // the case did not finish
	SetupSec    float64        `json:"setup_s"`           // cluster start, dial, leases or sessions
	DurationSec float64        `json:"duration_s"`        // -duration
	ElapsedSec  float64        `json:"elapsed_s"`         // measured: start barrier to the last client's return
	Ops         int64          `json:"ops"`               // successful operations (lock: acquisitions)
	Errors      int64          `json:"errors"`
	ErrorKinds  []string       `json:"error_kinds,omitempty"` // "N× message", most frequent first
	InFlight    int64          `json:"in_flight_at_end"`      // cancelled by the deadline, not counted
	OpsPerSec   float64        `json:"ops_per_s"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	CPUSec      float64        `json:"server_cpu_s"` // Σ members' utime+stime over the measured run
	CPUusPerOp  float64        `json:"server_cpu_us_per_op"`
	PeakRSSMiB  []float64      `json:"peak_rss_mib,omitempty"` // per member, VmHWM
	MaxRSSMiB   float64        `json:"max_rss_mib"`
	TotalRSSMiB float64        `json:"total_rss_mib"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fill copies a measured outcome into the record.
func (r *record) fill(out outcome) {
	r.ElapsedSec = out.elapsed.Seconds()
	r.Ops = out.ok
	r.Errors = out.failed
	r.ErrorKinds = errorSummary(out.errs)
	r.InFlight = out.cutOff
	if out.elapsed > 0 {
		r.OpsPerSec = float64(out.ok) / out.elapsed.Seconds()
	}
	r.P50ms = ms(percentile(out.lats, 0.50))
	r.P99ms = ms(percentile(out.lats, 0.99))
	r.MaxMs = ms(percentile(out.lats, 1))
}

// label names the case in the table.
func (r record) label() string {
	switch r.Case {
	case caseGrant:
		return "lease grant"
	case caseKeepAlive:
		return fmt.Sprintf("lease keepalive (%d leases)", r.Leases)
	case caseLock16, caseLock256:
		return "lock acquire/release"
	case caseSeq:
		return "sequential create"
	}
	return r.Case
}

// summary is the progress line for standard error.
func (r record) summary() string {
	switch {
	case r.Skipped != "":
		return fmt.Sprintf("%-5s %-9s skipped: %s", r.System, r.Case, r.Skipped)
	case r.Failure != "":
		return fmt.Sprintf("%-5s %-9s clients=%d FAILED: %s", r.System, r.Case, r.Clients, r.Failure)
	}
	return fmt.Sprintf("%-5s %-9s clients=%-3d ops=%d ops/s=%.1f p50=%.2fms p99=%.2fms max=%.2fms cpu=%.1fs (%.0fus/op) rss=%.1fMiB errors=%d in-flight=%d setup=%.1fs",
		r.System, r.Case, r.Clients, r.Ops, r.OpsPerSec, r.P50ms, r.P99ms, r.MaxMs, r.CPUSec, r.CPUusPerOp, r.MaxRSSMiB, r.Errors, r.InFlight, r.SetupSec)
}

// facts describe the run and the machine, for the head of the report.
type facts struct {
	command  string
	date     string
	nproc    string
	cpuModel string
	kernel   string
	goVer    string
	loadAvg  string
	binaries [][2]string // system, description
}

// gatherFacts reads the machine facts (each falls back to a note saying
// why it is missing, never to nothing).
func gatherFacts(ctx context.Context, o options, args []string) facts {
	f := facts{
		command: shellJoin(args),
		date:    time.Now().UTC().Format("2006-01-02 15:04 MST"),
		nproc:   commandOutput(ctx, "nproc"),
		goVer:   commandOutput(ctx, "go", "version"),
	}
	if strings.HasPrefix(f.nproc, "(") {
		f.nproc = fmt.Sprintf("%d (runtime.NumCPU; nproc: %s)", runtime.NumCPU(), f.nproc)
	}
	if strings.HasPrefix(f.goVer, "(") {
		f.goVer = fmt.Sprintf("%s (go not runnable: %s; this is the version coordbench was built with)", runtime.Version(), f.goVer)
	}
	f.kernel = firstLine(readFile("/proc/sys/kernel/osrelease"))
	load := strings.Fields(readFile("/proc/loadavg"))
	f.loadAvg = strings.Join(load[:min(3, len(load))], " ")
	f.cpuModel = cpuModel()
	for _, sys := range o.systems {
		bin := o.cairn
		if sys == cluster.Etcd {
			bin = o.etcd
		}
		f.binaries = append(f.binaries, [2]string{string(sys), describeBinary(ctx, sys, bin)})
	}
	return f
}

// commandOutput is the trimmed first line of a command's output, or
// "(error)" when it cannot be run.
func commandOutput(ctx context.Context, name string, arg ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, arg...).Output()
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return firstLine(string(b))
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "(no model name in /proc/cpuinfo)"
}

// describeBinary is the path and what the binary says about itself: its
// Go build info (module version, VCS revision, toolchain) and, for etcd,
// `etcd --version`.
func describeBinary(ctx context.Context, sys cluster.System, path string) string {
	desc := "`" + path + "`"
	if sys == cluster.Etcd {
		desc += ", `etcd --version`: " + commandOutput(ctx, path, "--version")
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return desc + fmt.Sprintf(", no Go build info (%v)", err)
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	desc += ", built with " + bi.GoVersion
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		desc += ", module " + bi.Main.Path + " " + bi.Main.Version
	}
	if rev != "" {
		desc += ", commit " + rev[:min(12, len(rev))]
		if modified == "true" {
			desc += " plus uncommitted changes"
		}
	} else {
		desc += ", no VCS revision in the binary (built with -buildvcs=false?)"
	}
	return desc + ", sha256 " + sha256Prefix(path)
}

// sha256Prefix is the first 16 hex digits of a file's SHA-256, which
// identifies a binary built without VCS information.
func sha256Prefix(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// shellJoin quotes args for a POSIX shell where needed.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// printReport prints the machine facts and every record as Markdown.
func printReport(w io.Writer, f facts, o options, recs []record) {
	fmt.Fprintf(w, "\n## Coordination: Cairn vs etcd\n\n")
	fmt.Fprintf(w, "Command: `%s` (%s)\n\n", f.command, f.date)
	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "|---|---|")
	fmt.Fprintf(w, "| CPUs (`nproc`) | %s |\n", f.nproc)
	fmt.Fprintf(w, "| CPU model (`/proc/cpuinfo`) | `%s` |\n", f.cpuModel)
	fmt.Fprintf(w, "| Kernel | %s |\n", f.kernel)
	fmt.Fprintf(w, "| Go (`go version`) | %s |\n", f.goVer)
	fmt.Fprintf(w, "| Load average at start (`/proc/loadavg`) | %s |\n", f.loadAvg)
	for _, b := range f.binaries {
		fmt.Fprintf(w, "| %s | %s |\n", b[0], cell(b[1]))
	}
	if len(recs) == 0 {
		fmt.Fprintln(w, "\nNo case ran.")
		return
	}
	fmt.Fprintf(w, "\n%v per case, each on a fresh 3-member cluster; one clientv3 client per benchmark client, client i connected to member i mod 3. ", o.duration)
	fmt.Fprintf(w, "ops/s = successful operations per second, all clients together (lock: acquisitions). ")
	fmt.Fprintf(w, "Latencies in ms: the call (lock: Lock, waiting included). ")
	fmt.Fprintf(w, "CPU = server CPU (3 members, user+sys) over the measured run, in total and per operation; ")
	fmt.Fprintf(w, "RSS = peak RSS (VmHWM) of the largest member / sum of 3, MiB, setup included. ")
	fmt.Fprintf(w, "In flight = operations cut off by the deadline, counted neither as done nor as errors.\n\n")
	fmt.Fprintln(w, "| case | clients | system | ops | ops/s | p50 ms | p99 ms | max ms | CPU s | CPU µs/op | RSS MiB max / sum | errors | in flight |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range recs {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(w, "| %s | %d | %s | n/a: %s | | | | | | | | | |\n", r.label(), r.Clients, r.System, cell(r.Skipped))
		case r.Failure != "" && r.Ops == 0 && r.Errors == 0:
			fmt.Fprintf(w, "| %s | %d | %s | **failed** (below) | | | | | | | | | |\n", r.label(), r.Clients, r.System)
		default:
			mark := ""
			if r.Failure != "" {
				mark = " **failed** (below)"
			}
			fmt.Fprintf(w, "| %s | %d | %s%s | %d | %.1f | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f / %.1f | %d | %d |\n",
				r.label(), r.Clients, r.System, mark, r.Ops, r.OpsPerSec, r.P50ms, r.P99ms, r.MaxMs,
				r.CPUSec, r.CPUusPerOp, r.MaxRSSMiB, r.TotalRSSMiB, r.Errors, r.InFlight)
		}
	}
	printRatios(w, recs)
	printProblems(w, recs)
}

// printRatios prints Cairn ÷ etcd for every case both finished.
func printRatios(w io.Writer, recs []record) {
	type key struct {
		c   string
		sys cluster.System
	}
	by := map[key]record{}
	var order []string
	for _, r := range recs {
		if r.Skipped != "" || r.Failure != "" {
			continue
		}
		if _, seen := by[key{r.Case, cluster.Cairn}]; !seen {
			if _, seen := by[key{r.Case, cluster.Etcd}]; !seen {
				order = append(order, r.Case)
			}
		}
		by[key{r.Case, r.System}] = r
	}
	var rows []string
	for _, c := range order {
		a, okA := by[key{c, cluster.Cairn}]
		b, okB := by[key{c, cluster.Etcd}]
		if !okA || !okB || b.OpsPerSec == 0 || b.P99ms == 0 || b.CPUusPerOp == 0 {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %.2f | %.2f | %.2f |", a.label(), a.Clients,
			a.OpsPerSec/b.OpsPerSec, a.P99ms/b.P99ms, a.CPUusPerOp/b.CPUusPerOp))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\n| case | clients | ops/s cairn÷etcd | p99 cairn÷etcd | CPU/op cairn÷etcd |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
}

// printProblems lists every error message and failure, or says there were
// none.
func printProblems(w io.Writer, recs []record) {
	listed := false
	for _, r := range recs {
		if len(r.ErrorKinds) == 0 && r.Failure == "" {
			continue
		}
		if !listed {
			fmt.Fprintln(w, "\nErrors and failures:")
			fmt.Fprintln(w)
			listed = true
		}
		for _, e := range r.ErrorKinds {
			fmt.Fprintf(w, "- %s %s (%d clients): %s\n", r.System, r.Case, r.Clients, cell(e))
		}
		if r.Failure != "" {
			fmt.Fprintf(w, "- %s %s (%d clients) **failed**:\n\n", r.System, r.Case, r.Clients)
			for line := range strings.SplitSeq(strings.TrimRight(r.Failure, "\n"), "\n") {
				fmt.Fprintf(w, "      %s\n", line)
			}
			fmt.Fprintln(w)
		}
	}
	if !listed {
		fmt.Fprintln(w, "\nNo operation failed and every case finished.")
	}
}

// cell makes s safe inside a Markdown table cell: one line, no bare pipes.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
