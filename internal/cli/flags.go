package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// boolFlag is implemented by flag values that need no argument.
type boolFlag interface{ IsBoolFlag() bool }

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(boolFlag)
	return ok && b.IsBoolFlag()
}

// reorderArgs moves flags in front of positional arguments so that the
// standard flag package, which stops at the first positional argument, sees
// them all: `get foo --prefix` becomes `--prefix -- foo`. A flag that takes a
// value keeps the argument after it (unless written --flag=value). "--" ends
// the flags: everything after it is positional. Unknown flags are kept in the
// flag part so that Parse reports them.
func reorderArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	out := make([]string, 0, len(flags)+1+len(pos))
	out = append(out, flags...)
	out = append(out, "--")
	return append(out, pos...)
}

const topUsage = `Usage: cairn [global flags] VERB [flags] [args]

Cairn is an etcd-v3-compatible key-value store. 'cairn serve' runs a node;
every other verb is a client of the members at --endpoints.

Verbs:
`

const outputHelp = `Output (-o/--output):
  table  aligned columns with a header, for humans (default)
  json   one JSON object per result, etcd field names, keys and values as strings
  value  only the values, one per line, for scripts

Exit codes: 0 ok, 1 request failed or no member answered, 2 usage error;
'cairn lock NAME -- COMMAND' exits with COMMAND's status.
`

func printTopUsage(w io.Writer) {
	fmt.Fprint(w, topUsage)
	fmt.Fprintf(w, "  %-17s %s\n", "serve", "run a Cairn node (see 'cairn serve --help')")
	for _, v := range verbs() {
		fmt.Fprintf(w, "  %-17s %s\n", v.name, v.summary)
	}
	fmt.Fprintf(w, "  %-17s %s\n", "help [VERB]", "show help for a verb")
	fmt.Fprintf(w, "\nGlobal flags (before or after the verb):\n")
	printFlags(w, globalFlagSet(&globalFlags{endpoints: defaultEndpoints, dialTimeout: defaultDialTimeout, commandTimeout: defaultCommandTimeout, output: outputTable}), nil)
	fmt.Fprintf(w, "\n%s", outputHelp)
}

func globalFlagSet(g *globalFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("global", flag.ContinueOnError)
	gg := *g
	gg.register(fs)
	return fs
}

func printVerbUsage(w io.Writer, v *verb, g *globalFlags) {
	fmt.Fprintf(w, "Usage: cairn %s [flags] %s\n\n%s\n", v.name, v.args, strings.TrimSpace(v.help))
	fs := flag.NewFlagSet(v.name, flag.ContinueOnError)
	v.register(fs)
	if hasFlags(fs) {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, fs, nil)
	}
	fmt.Fprintf(w, "\nGlobal flags: --endpoints, --dial-timeout, --command-timeout, -o/--output (see 'cairn help').\n")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// shortFor is the usage text of a one-letter alias: "short for --NAME".
const shortFor = "short for --"

// printFlags prints one line per flag. A one-letter alias ("-o", whose usage
// is "short for --output") shares its flag's line ("-o, --output"); etcdctl's
// -w/--write-out are mentioned on --output's.
func printFlags(w io.Writer, fs *flag.FlagSet, skip map[string]bool) {
	short := map[string]string{} // flag name -> its one-letter alias
	fs.VisitAll(func(f *flag.Flag) {
		if long, ok := strings.CutPrefix(f.Usage, shortFor); ok && len(f.Name) == 1 {
			short[long] = f.Name
		}
	})
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		if long, ok := strings.CutPrefix(f.Usage, shortFor); ok && short[long] == f.Name {
			return // on its flag's line
		}
		if f.Name == "w" || f.Name == "write-out" || skip[f.Name] {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if s, ok := short[f.Name]; ok {
			left = "-" + s + ", " + left
		}
		if f.Name == "output" {
			usage += " (etcdctl's -w/--write-out also works)"
		}
		if name != "" {
			left += " " + name
		}
		if d := f.DefValue; d != "" && d != "false" && d != "0" {
			usage += fmt.Sprintf(" (default %s)", d)
		}
		lines = append(lines, [2]string{left, usage})
	})
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", width, l[0], l[1])
	}
}

// helpVerb implements `cairn help [VERB]`.
func helpVerb(args []string, g *globalFlags, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printTopUsage(stdout)
		return exitOK
	}
	if args[0] == "serve" {
		fmt.Fprintln(stdout, "Run 'cairn serve --help' for the server's flags.")
		return exitOK
	}
	v, _, err := findVerb(args[0], args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "cairn help: %v\n", err)
		return exitUsage
	}
	printVerbUsage(stdout, v, g)
	return exitOK
}
