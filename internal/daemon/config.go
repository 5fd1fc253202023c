package daemon

// Server configuration: Config, its defaults, parsing (flags, environment,
// YAML file) and validation.
//
// Precedence, highest first: command-line flags; environment variables named
// CAIRN_<FLAG NAME IN UPPER CASE, DASHES AS UNDERSCORES> (CAIRN_DATA_DIR,
// CAIRN_LISTEN_CLIENT_URLS, ...); the YAML file named by --config-file (or
// CAIRN_CONFIG_FILE), whose keys are the flag names (`data-dir: /var/lib/cairn`;
// URL lists may be a comma string or a YAML sequence); then the defaults of
// DefaultConfig. Two defaults are derived after all layers: the advertised
// client URLs default to the listen client URLs, and the initial cluster
// defaults to "<name>=<initial-advertise-peer-urls>".

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the configuration of one Cairn node (`cairn serve`). The zero
// value is not usable; start from DefaultConfig or ParseConfig.
type Config struct {
	Name                     string               // --name: this member's name; default "default"
	DataDir                  string               // --data-dir: WAL and snapshots; default "./cairn.data"
	ListenClientURLs         []url.URL            // --listen-client-urls: gRPC and HTTP for clients; default http://127.0.0.1:2379
	AdvertiseClientURLs      []url.URL            // --advertise-client-urls: told to clients; default: the listen client URLs
	ListenPeerURLs           []url.URL            // --listen-peer-urls: raft traffic; default http://127.0.0.1:2380
	InitialAdvertisePeerURLs []url.URL            // --initial-advertise-peer-urls: told to peers; default http://127.0.0.1:2380
	InitialCluster           map[string][]url.URL // --initial-cluster "a=http://h1:2380,b=http://h2:2380"; default "<name>=<initial-advertise-peer-urls>"
	InitialClusterState      string               // --initial-cluster-state: new or existing; default new
	InitialClusterToken      string               // --initial-cluster-token: keeps distinct clusters apart; default "cairn-cluster"
	SnapshotCount            uint64               // --snapshot-count: applied entries between snapshots; default 10000
	SnapshotCatchUpEntries   uint64               // --snapshot-catchup-entries: entries kept after a snapshot for slow followers; default 5000
	CorruptCheckInterval     time.Duration        // --corrupt-check-interval: how often members compare their state; default 5m, 0 disables
	QuotaBackendBytes        int64                // --quota-backend-bytes: space quota on the in-memory data size; 0 means 2 GiB
	HeartbeatInterval        time.Duration        // --heartbeat-interval, integer milliseconds (or a Go duration); default 100ms
	ElectionTimeout          time.Duration        // --election-timeout, integer milliseconds (or a Go duration); default 1000ms
	MaxRequestBytes          int                  // --max-request-bytes: largest client request; default 1.5 MiB (1572864)
	MaxTxnOps                int                  // --max-txn-ops: most ops in one txn; default 128
	AutoCompactionMode       string               // --auto-compaction-mode: periodic or revision; default periodic
	AutoCompactionRetention  string               // --auto-compaction-retention: "0" disables; periodic: "1h", "30m" or a bare number of hours; revision: a count
	ListenMetricsURLs        []url.URL            // --listen-metrics-urls: optional extra listeners for /metrics and /health (also on the client URLs)
	LogLevel                 string               // --log-level: debug, info, warn or error; default info
	LogFormat                string               // --log-format: text or json; default text
	ConfigFile               string               // --config-file: YAML file read by ParseConfig; default none
	EnablePprof              bool                 // --enable-pprof: serve /debug/pprof on the client URLs; default false
	Failpoints               string               // not a flag: CAIRN_FAILPOINTS, honoured only by binaries built with -tags failpoints
}

// Defaults.
const (
	DefaultName                = "default"
	DefaultDataDir             = "./cairn.data"
	DefaultListenClientURL     = "http://127.0.0.1:2379"
	DefaultListenPeerURL       = "http://127.0.0.1:2380"
	DefaultInitialClusterToken = "cairn-cluster"
	DefaultSnapshotCount       = 10000
	DefaultSnapshotCatchUp     = 5000
	DefaultHeartbeatInterval   = 100 * time.Millisecond
	DefaultElectionTimeout     = 1000 * time.Millisecond
	DefaultMaxRequestBytes     = 1572864
	DefaultMaxTxnOps           = 128

	// maxElectionTimeout is etcd's upper bound for --election-timeout.
	maxElectionTimeout = 50 * time.Second
)

// Config errors, for errors.Is.
var (
	// ErrInvalidConfig wraps every problem found by Validate.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrConfigFile wraps problems reading or decoding the config file.
	ErrConfigFile = errors.New("bad config file")
)

// ConfigError lists every problem Validate found, each naming its flag.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0]
	}
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Unwrap makes errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func mustURLs(s string) []url.URL {
	us, err := parseURLs(s)
	if err != nil {
		panic(err)
	}
	return us
}

// DefaultConfig returns the configuration used when nothing is set: a single
// member named "default" on localhost.
func DefaultConfig() Config {
	c := Config{
		Name:                     DefaultName,
		DataDir:                  DefaultDataDir,
		ListenClientURLs:         mustURLs(DefaultListenClientURL),
		AdvertiseClientURLs:      mustURLs(DefaultListenClientURL),
		ListenPeerURLs:           mustURLs(DefaultListenPeerURL),
		InitialAdvertisePeerURLs: mustURLs(DefaultListenPeerURL),
		InitialClusterState:      "new",
		InitialClusterToken:      DefaultInitialClusterToken,
		SnapshotCount:            DefaultSnapshotCount,
		SnapshotCatchUpEntries:   DefaultSnapshotCatchUp,
		CorruptCheckInterval:     5 * time.Minute,
		HeartbeatInterval:        DefaultHeartbeatInterval,
		ElectionTimeout:          DefaultElectionTimeout,
		MaxRequestBytes:          DefaultMaxRequestBytes,
		MaxTxnOps:                DefaultMaxTxnOps,
		AutoCompactionMode:       "periodic",
		AutoCompactionRetention:  "0",
		LogLevel:                 "info",
		LogFormat:                "text",
	}
	c.InitialCluster = map[string][]url.URL{c.Name: mustURLs(DefaultListenPeerURL)}
	return c
}

// ParseConfig builds the configuration from the `cairn serve` arguments, the
// environment (os.Environ form, "KEY=value") and the config file, in that
// order of precedence over the defaults, then validates it. With --help (or
// -h) it prints usage to stderr and returns flag.ErrHelp. An unknown flag, a
// value that does not parse, an unknown key in the config file, or a failed
// Validate is an error naming the flag (or env var, or file and key).
func ParseConfig(args []string, env []string, stderr io.Writer) (Config, error) {
	// Pass 1: syntax of the flags, and where the config file is.
	var scratch Config
	probe := newFlagSet(&scratch, io.Discard)
	if err := probe.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printConfigUsage(stderr)
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w (run 'cairn serve --help')", err)
	}
	if probe.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: cairn serve takes only flags", probe.Arg(0))
	}
	envs := envMap(env)

	// Pass 2: file, then env, then flags, onto the defaults.
	cfg := DefaultConfig()
	fs := newFlagSet(&cfg, io.Discard)
	set := map[string]bool{}
	cfg.ConfigFile = scratch.ConfigFile
	if cfg.ConfigFile == "" {
		cfg.ConfigFile = envs[envName("config-file")]
	}
	if cfg.ConfigFile != "" {
		if err := applyConfigFile(fs, cfg.ConfigFile, set); err != nil {
			return Config{}, err
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := envs[envName(f.Name)]
		if !ok || envErr != nil || f.Name == "config-file" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s=%q (--%s): %w", envName(f.Name), v, f.Name, err)
			return
		}
		set[f.Name] = true
	})
	if envErr != nil {
		return Config{}, envErr
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if !set["advertise-client-urls"] {
		cfg.AdvertiseClientURLs = append([]url.URL(nil), cfg.ListenClientURLs...)
	}
	if !set["initial-cluster"] {
		cfg.InitialCluster = map[string][]url.URL{cfg.Name: append([]url.URL(nil), cfg.InitialAdvertisePeerURLs...)}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// envName is the environment variable for a flag: data-dir -> CAIRN_DATA_DIR.
func envName(flagName string) string {
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// applyConfigFile reads the YAML file and sets each key as its flag.
func applyConfigFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: --config-file: %w", ErrConfigFile, err)
	}
	values, err := decodeConfigYAML(data)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrConfigFile, path, err)
	}
	for _, kv := range values {
		if kv.key == "config-file" || fs.Lookup(kv.key) == nil {
			return fmt.Errorf("%w %s: line %d: unknown key %q", ErrConfigFile, path, kv.line, kv.key)
		}
		if err := fs.Set(kv.key, kv.value); err != nil {
			return fmt.Errorf("%w %s: line %d: %s: %w", ErrConfigFile, path, kv.line, kv.key, err)
		}
		set[kv.key] = true
	}
	return nil
}

type yamlKV struct {
	key, value string
	line       int
}

// decodeConfigYAML reads a YAML mapping of flag names to scalars or to
// sequences of scalars (joined with commas). An empty document is fine.
func decodeConfigYAML(data []byte) ([]yamlKV, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of flag names to values", root.Line)
	}
	var out []yamlKV
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: keys must be flag names", k.Line)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
		}
		seen[k.Value] = true
		var value string
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag != "!!null" {
				value = v.Value
			}
		case yaml.SequenceNode:
			parts := make([]string, 0, len(v.Content))
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: %s: list items must be plain values", item.Line, k.Value)
				}
				parts = append(parts, item.Value)
			}
			value = strings.Join(parts, ",")
		default:
			return nil, fmt.Errorf("line %d: %s: want a value or a list of values", v.Line, k.Value)
		}
		out = append(out, yamlKV{key: k.Value, value: value, line: k.Line})
	}
	return out, nil
}

// newFlagSet binds the `cairn serve` flags to c, with c's values as defaults.
func newFlagSet(c *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cairn serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Name, "name", c.Name, "this member's name (unique in the cluster)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the WAL and snapshots")
	fs.Var((*urlsValue)(&c.ListenClientURLs), "listen-client-urls", "URLs to serve clients on (gRPC, HTTP, /metrics, /health)")
	fs.Var((*urlsValue)(&c.AdvertiseClientURLs), "advertise-client-urls", "client URLs told to clients (default: --listen-client-urls)")
	fs.Var((*urlsValue)(&c.ListenPeerURLs), "listen-peer-urls", "URLs to serve peers on")
	fs.Var((*urlsValue)(&c.InitialAdvertisePeerURLs), "initial-advertise-peer-urls", "peer URLs told to the other members")
	fs.Var((*clusterValue)(&c.InitialCluster), "initial-cluster", "the initial members, name=peer-url,... (default: <name>=<initial-advertise-peer-urls>)")
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", c.InitialClusterState, "new (bootstrap a cluster) or existing (join one)")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", c.InitialClusterToken, "token that tells clusters apart during bootstrap")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", c.SnapshotCount, "applied entries between snapshots")
	fs.Uint64Var(&c.SnapshotCatchUpEntries, "snapshot-catchup-entries", c.SnapshotCatchUpEntries, "raft entries kept after a snapshot so slow followers can catch up")
	fs.Var((*msValue)(&c.HeartbeatInterval), "heartbeat-interval", "leader heartbeat interval in milliseconds")
	fs.Var((*msValue)(&c.ElectionTimeout), "election-timeout", "election timeout in milliseconds (at least 5x --heartbeat-interval)")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", c.MaxRequestBytes, "largest client request in bytes")
	fs.IntVar(&c.MaxTxnOps, "max-txn-ops", c.MaxTxnOps, "most operations in one txn")
	fs.StringVar(&c.AutoCompactionMode, "auto-compaction-mode", c.AutoCompactionMode, "periodic or revision")
	fs.StringVar(&c.AutoCompactionRetention, "auto-compaction-retention", c.AutoCompactionRetention, `history to keep: "0" disables; periodic: 1h, 30m or a number of hours; revision: a count`)
	fs.Var((*urlsValue)(&c.ListenMetricsURLs), "listen-metrics-urls", "extra URLs serving only /metrics and /health")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.StringVar(&c.ConfigFile, "config-file", c.ConfigFile, "YAML file whose keys are these flag names")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", c.EnablePprof, "serve Go runtime profiles at /debug/pprof on the client URLs")
	fs.Int64Var(&c.QuotaBackendBytes, "quota-backend-bytes", c.QuotaBackendBytes, "space quota on the data's in-memory size (keys and retained history); writes are refused with NOSPACE past it; 0 means 2 GiB")
	fs.DurationVar(&c.CorruptCheckInterval, "corrupt-check-interval", c.CorruptCheckInterval, "how often members compare their state (HashKV) and a diverged one stops; 0 disables")
	return fs
}

func printConfigUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: cairn serve [flags]

Runs a Cairn node. Settings come from flags, then CAIRN_<FLAG> environment
variables (CAIRN_DATA_DIR, ...), then the YAML --config-file (keys are flag
names), then defaults.

Flags:
`)
	d := DefaultConfig()
	fs := newFlagSet(&d, w)
	fs.PrintDefaults()
}

// urlsValue is a comma-separated list of URLs.
type urlsValue []url.URL

func (v *urlsValue) String() string {
	if v == nil {
		return ""
	}
	return urlsString(*v)
}

func (v *urlsValue) Set(s string) error {
	us, err := parseURLs(s)
	if err != nil {
		return err
	}
	*v = us
	return nil
}

func urlsString(us []url.URL) string {
	parts := make([]string, len(us))
	for i := range us {
		parts[i] = us[i].String()
	}
	return strings.Join(parts, ",")
}

// parseURLs parses a comma-separated list; schemes and ports are checked by
// Validate. An empty string is an empty list.
func parseURLs(s string) ([]url.URL, error) {
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil {
			return nil, fmt.Errorf("bad URL %q: %w", part, err)
		}
		if u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("bad URL %q: want scheme://host:port", part)
		}
		out = append(out, *u)
	}
	return out, nil
}

// clusterValue is name=url,name=url; a name may repeat for several URLs.
type clusterValue map[string][]url.URL

func (v *clusterValue) String() string {
	if v == nil {
		return ""
	}
	return clusterString(*v)
}

func clusterString(m map[string][]url.URL) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		for _, u := range m[n] {
			parts = append(parts, n+"="+u.String())
		}
	}
	return strings.Join(parts, ",")
}

func (v *clusterValue) Set(s string) error {
	m := map[string][]url.URL{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, raw, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return fmt.Errorf("bad member %q: want name=http://host:port", part)
		}
		us, err := parseURLs(raw)
		if err != nil {
			return fmt.Errorf("member %s: %w", name, err)
		}
		if len(us) == 0 {
			return fmt.Errorf("bad member %q: want name=http://host:port", part)
		}
		m[name] = append(m[name], us...)
	}
	*v = m
	return nil
}

// msValue is a duration written as integer milliseconds (etcd style); a Go
// duration such as "250ms" or "1s" is accepted too.
type msValue time.Duration

func (v *msValue) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatInt(time.Duration(*v).Milliseconds(), 10)
}

func (v *msValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		*v = msValue(time.Duration(n) * time.Millisecond)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want milliseconds, got %q", s)
	}
	*v = msValue(d)
	return nil
}

// Validate checks the configuration and returns a *ConfigError (errors.Is
// ErrInvalidConfig) listing every problem, each naming its flag.
func (c *Config) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.Name == "" {
		add("--name must not be empty")
	}
	if c.DataDir == "" {
		add("--data-dir must not be empty")
	}
	checkURLs := func(flagName string, us []url.URL, required bool) {
		if len(us) == 0 {
			if required {
				add("--%s must name at least one URL", flagName)
			}
			return
		}
		for _, u := range us {
			if msg := urlProblem(u); msg != "" {
				add("--%s %s: %s", flagName, u.String(), msg)
			}
		}
	}
	checkURLs("listen-client-urls", c.ListenClientURLs, true)
	checkURLs("advertise-client-urls", c.AdvertiseClientURLs, true)
	checkURLs("listen-peer-urls", c.ListenPeerURLs, true)
	checkURLs("initial-advertise-peer-urls", c.InitialAdvertisePeerURLs, true)
	checkURLs("listen-metrics-urls", c.ListenMetricsURLs, false)

	switch c.InitialClusterState {
	case "new", "existing":
	default:
		add("--initial-cluster-state %q must be new or existing", c.InitialClusterState)
	}
	if c.InitialClusterToken == "" {
		add("--initial-cluster-token must not be empty")
	}
	p = append(p, c.clusterProblems()...)

	if c.SnapshotCount == 0 {
		add("--snapshot-count must be greater than 0")
	}
	if c.SnapshotCatchUpEntries == 0 {
		add("--snapshot-catchup-entries must be greater than 0")
	}
	switch {
	case c.HeartbeatInterval <= 0:
		add("--heartbeat-interval (%v) must be positive", c.HeartbeatInterval)
	case c.ElectionTimeout < 5*c.HeartbeatInterval:
		add("--election-timeout (%v) must be at least 5x --heartbeat-interval (%v)", c.ElectionTimeout, c.HeartbeatInterval)
	case c.ElectionTimeout > maxElectionTimeout:
		add("--election-timeout (%v) must be at most %v", c.ElectionTimeout, maxElectionTimeout)
	}
	if c.MaxRequestBytes <= 0 {
		add("--max-request-bytes (%d) must be positive", c.MaxRequestBytes)
	}
	if c.MaxTxnOps < 1 {
		add("--max-txn-ops (%d) must be at least 1", c.MaxTxnOps)
	}
	if _, _, _, err := c.AutoCompaction(); err != nil {
		add("%v", err)
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		add("--log-level %q must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("--log-format %q must be text or json", c.LogFormat)
	}
	if len(p) > 0 {
		return &ConfigError{Problems: p}
	}
	return nil
}

// urlProblem describes what is wrong with a listen or advertise URL, or "".
func urlProblem(u url.URL) string {
	switch u.Scheme {
	case "http":
	case "https", "unixs":
		return "TLS is not supported yet; use http://"
	default:
		return fmt.Sprintf("scheme %q is not supported; use http://", u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || port == "" {
		return "want http://host:port with an explicit port"
	}
	if host == "" {
		return "want http://host:port with a host"
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Sprintf("bad port %q", port)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "must not have a path, query, fragment or user"
	}
	return ""
}

// clusterProblems checks --initial-cluster against --name and
// --initial-advertise-peer-urls.
func (c *Config) clusterProblems() []string {
	var p []string
	if len(c.InitialCluster) == 0 {
		return []string{"--initial-cluster must name at least one member"}
	}
	names := make([]string, 0, len(c.InitialCluster))
	for n := range c.InitialCluster {
		names = append(names, n)
	}
	sort.Strings(names)
	owner := map[string]string{}
	for _, n := range names {
		for _, u := range c.InitialCluster[n] {
			if msg := urlProblem(u); msg != "" {
				p = append(p, fmt.Sprintf("--initial-cluster member %s %s: %s", n, u.String(), msg))
			}
			key := canonicalURL(u)
			if other, dup := owner[key]; dup && other != n {
				p = append(p, fmt.Sprintf("--initial-cluster peer URL %s is listed for both %s and %s", u.String(), other, n))
			}
			owner[key] = n
		}
	}
	mine, ok := c.InitialCluster[c.Name]
	if !ok {
		if c.Name != "" {
			p = append(p, fmt.Sprintf("--name %q is missing from --initial-cluster (%s)", c.Name, clusterString(c.InitialCluster)))
		}
		return p
	}
	in := func(u url.URL, list []url.URL) bool {
		for _, v := range list {
			if canonicalURL(v) == canonicalURL(u) {
				return true
			}
		}
		return false
	}
	for _, u := range c.InitialAdvertisePeerURLs {
		if !in(u, mine) {
			p = append(p, fmt.Sprintf("--initial-advertise-peer-urls %s is not in --initial-cluster for %s (%s)", u.String(), c.Name, urlsString(mine)))
		}
	}
	for _, u := range mine {
		if !in(u, c.InitialAdvertisePeerURLs) {
			p = append(p, fmt.Sprintf("--initial-cluster lists %s for %s but --initial-advertise-peer-urls (%s) does not", u.String(), c.Name, urlsString(c.InitialAdvertisePeerURLs)))
		}
	}
	return p
}

func canonicalURL(u url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// AutoCompaction parses AutoCompactionMode and AutoCompactionRetention. Mode
// is "periodic" or "revision"; a retention of "0" disables auto compaction
// (period and revisions both zero). For periodic, period is the history to
// keep: a Go duration ("1h", "30m") or a bare integer number of hours. For
// revision, revisions is the number of revisions to keep.
func (c *Config) AutoCompaction() (mode string, period time.Duration, revisions int64, err error) {
	mode = c.AutoCompactionMode
	r := strings.TrimSpace(c.AutoCompactionRetention)
	switch mode {
	case "periodic":
		if r == "" || r == "0" {
			return mode, 0, 0, nil
		}
		if n, perr := strconv.ParseInt(r, 10, 64); perr == nil {
			if n < 0 || n > int64(time.Duration(1<<63-1)/time.Hour) {
				return mode, 0, 0, fmt.Errorf("--auto-compaction-retention %q must be a non-negative number of hours or a duration such as 1h or 30m", r)
			}
			return mode, time.Duration(n) * time.Hour, 0, nil
		}
		d, perr := time.ParseDuration(r)
		if perr != nil || d < 0 {
			return mode, 0, 0, fmt.Errorf("--auto-compaction-retention %q must be a non-negative number of hours or a duration such as 1h or 30m", r)
		}
		return mode, d, 0, nil
	case "revision":
		if r == "" {
			return mode, 0, 0, nil
		}
		n, perr := strconv.ParseInt(r, 10, 64)
		if perr != nil || n < 0 {
			return mode, 0, 0, fmt.Errorf("--auto-compaction-retention %q must be a non-negative revision count with --auto-compaction-mode revision", r)
		}
		return mode, 0, n, nil
	default:
		return mode, 0, 0, fmt.Errorf("--auto-compaction-mode %q must be periodic or revision", mode)
	}
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// LogHandler returns the slog handler for LogLevel and LogFormat, writing to
// w. Unknown values fall back to info and text (Validate rejects them).
func (c *Config) LogHandler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: logLevels[c.LogLevel]}
	if c.LogFormat == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Logger is slog.New(c.LogHandler(w)).
func (c *Config) Logger(w io.Writer) *slog.Logger { return slog.New(c.LogHandler(w)) }
