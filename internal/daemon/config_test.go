package daemon

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func urls(t testing.TB, s string) []url.URL {
	t.Helper()
	us, err := parseURLs(s)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

func TestParseConfigDefaults(t *testing.T) {
	got, err := ParseConfig(nil, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("no flags:\n got %+v\nwant %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", got.Name, "default"},
		{"data-dir", got.DataDir, "./cairn.data"},
		{"listen-client-urls", urlsString(got.ListenClientURLs), "http://127.0.0.1:2379"},
		{"advertise-client-urls", urlsString(got.AdvertiseClientURLs), "http://127.0.0.1:2379"},
		{"listen-peer-urls", urlsString(got.ListenPeerURLs), "http://127.0.0.1:2380"},
		{"initial-advertise-peer-urls", urlsString(got.InitialAdvertisePeerURLs), "http://127.0.0.1:2380"},
		{"initial-cluster", clusterString(got.InitialCluster), "default=http://127.0.0.1:2380"},
		{"initial-cluster-state", got.InitialClusterState, "new"},
		{"initial-cluster-token", got.InitialClusterToken, "cairn-cluster"},
		{"snapshot-count", got.SnapshotCount, uint64(10000)},
		{"heartbeat-interval", got.HeartbeatInterval, 100 * time.Millisecond},
		{"election-timeout", got.ElectionTimeout, time.Second},
		{"max-request-bytes", got.MaxRequestBytes, 1572864},
		{"max-txn-ops", got.MaxTxnOps, 128},
		{"auto-compaction-mode", got.AutoCompactionMode, "periodic"},
		{"auto-compaction-retention", got.AutoCompactionRetention, "0"},
		{"listen-metrics-urls", len(got.ListenMetricsURLs), 0},
		{"log-level", got.LogLevel, "info"},
		{"log-format", got.LogFormat, "text"},
		{"config-file", got.ConfigFile, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseConfigPrecedence(t *testing.T) {
	file := filepath.Join("testdata", "config-data-dir.yaml") // data-dir: /from/file
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"default", nil, nil, "./cairn.data"},
		{"file", []string{"--config-file", file}, nil, "/from/file"},
		{"file from env", nil, []string{"CAIRN_CONFIG_FILE=" + file}, "/from/file"},
		{"env over file", []string{"--config-file", file}, []string{"CAIRN_DATA_DIR=/from/env"}, "/from/env"},
		{"env over default", nil, []string{"CAIRN_DATA_DIR=/from/env"}, "/from/env"},
		{"flag over env and file", []string{"--config-file=" + file, "--data-dir", "/from/flag"}, []string{"CAIRN_DATA_DIR=/from/env"}, "/from/flag"},
		{"flag over default", []string{"-data-dir=/from/flag"}, nil, "/from/flag"},
		{"unrelated env ignored", nil, []string{"CAIRN_ENDPOINTS=x", "HOME=/root", "junk"}, "./cairn.data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(tt.args, tt.env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DataDir != tt.want {
				t.Errorf("DataDir = %q, want %q", cfg.DataDir, tt.want)
			}
		})
	}
	// The file's other key survives when env and flags override data-dir.
	cfg, err := ParseConfig([]string{"--config-file", file, "--data-dir", "x"}, []string{"CAIRN_DATA_DIR=y"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SnapshotCount != 111 || cfg.ConfigFile != file {
		t.Errorf("SnapshotCount = %d, ConfigFile = %q; want 111 from the file", cfg.SnapshotCount, cfg.ConfigFile)
	}
}

func TestParseConfigFullFile(t *testing.T) {
	file := filepath.Join("testdata", "config-full.yaml")
	cfg, err := ParseConfig([]string{"--config-file", file}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Name:                     "node1",
		DataDir:                  "/var/lib/cairn",
		ListenClientURLs:         urls(t, "http://10.0.0.1:2379,http://127.0.0.1:2379"),
		AdvertiseClientURLs:      urls(t, "http://10.0.0.1:2379"),
		ListenPeerURLs:           urls(t, "http://10.0.0.1:2380"),
		InitialAdvertisePeerURLs: urls(t, "http://10.0.0.1:2380"),
		InitialCluster: map[string][]url.URL{
			"node1": urls(t, "http://10.0.0.1:2380"),
			"node2": urls(t, "http://10.0.0.2:2380"),
			"node3": urls(t, "http://10.0.0.3:2380"),
		},
		InitialClusterState:     "new",
		InitialClusterToken:     "prod",
		SnapshotCount:           5000,
		SnapshotCatchUpEntries:  1000,
		CorruptCheckInterval:    time.Minute,
		HeartbeatInterval:       50 * time.Millisecond,
		ElectionTimeout:         500 * time.Millisecond,
		MaxRequestBytes:         1 << 20,
		MaxTxnOps:               64,
		AutoCompactionMode:      "periodic",
		AutoCompactionRetention: "2h",
		ListenMetricsURLs:       urls(t, "http://127.0.0.1:9090"),
		LogLevel:                "debug",
		LogFormat:               "json",
		ConfigFile:              file,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("\n got %+v\nwant %+v", cfg, want)
	}
}

func TestParseConfigDerivedDefaults(t *testing.T) {
	cfg, err := ParseConfig([]string{"--name", "n1", "--listen-client-urls", "http://10.1.1.1:2379",
		"--initial-advertise-peer-urls", "http://10.1.1.1:2380"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := urlsString(cfg.AdvertiseClientURLs); got != "http://10.1.1.1:2379" {
		t.Errorf("advertise-client-urls = %s, want the listen client URLs", got)
	}
	if got := clusterString(cfg.InitialCluster); got != "n1=http://10.1.1.1:2380" {
		t.Errorf("initial-cluster = %s, want n1=http://10.1.1.1:2380", got)
	}
	// From the environment too.
	cfg, err = ParseConfig(nil, []string{"CAIRN_NAME=e1", "CAIRN_LISTEN_CLIENT_URLS=http://127.0.0.1:3379",
		"CAIRN_HEARTBEAT_INTERVAL=20", "CAIRN_ELECTION_TIMEOUT=1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if clusterString(cfg.InitialCluster) != "e1=http://127.0.0.1:2380" || urlsString(cfg.AdvertiseClientURLs) != "http://127.0.0.1:3379" {
		t.Errorf("derived from env: cluster %s, advertise %s", clusterString(cfg.InitialCluster), urlsString(cfg.AdvertiseClientURLs))
	}
	if cfg.HeartbeatInterval != 20*time.Millisecond || cfg.ElectionTimeout != time.Second {
		t.Errorf("heartbeat %v election %v", cfg.HeartbeatInterval, cfg.ElectionTimeout)
	}
}

func TestParseConfigErrors(t *testing.T) {
	unknownKeyFile := filepath.Join("testdata", "config-unknown-key.yaml")
	tests := []struct {
		name string
		args []string
		env  []string
		want []string // substrings of the error
	}{
		{"unknown flag", []string{"--listen-client-url", "http://x:1"}, nil, []string{"listen-client-url"}},
		{"positional", []string{"extra"}, nil, []string{`unexpected argument "extra"`}},
		{"bad flag value", []string{"--snapshot-count", "many"}, nil, []string{"snapshot-count"}},
		{"bad url", []string{"--listen-peer-urls", "127.0.0.1:2380"}, nil, []string{"listen-peer-urls", "127.0.0.1:2380"}},
		{"bad env", nil, []string{"CAIRN_MAX_TXN_OPS=lots"}, []string{"CAIRN_MAX_TXN_OPS", "--max-txn-ops"}},
		{"bad heartbeat", []string{"--heartbeat-interval", "fast"}, nil, []string{"heartbeat-interval", "milliseconds"}},
		{"unknown yaml key", []string{"--config-file", unknownKeyFile}, nil, []string{unknownKeyFile, `unknown key "listen-client-url"`, "line 2"}},
		{"missing file", []string{"--config-file", "testdata/nope.yaml"}, nil, []string{"nope.yaml"}},
		{"validation", []string{"--election-timeout", "200"}, nil, []string{"--election-timeout (200ms) must be at least 5x --heartbeat-interval (100ms)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.args, tt.env, io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	_, err := ParseConfig([]string{"--config-file", unknownKeyFile}, nil, io.Discard)
	if !errors.Is(err, ErrConfigFile) {
		t.Errorf("unknown key: %v is not ErrConfigFile", err)
	}
	_, err = ParseConfig([]string{"--election-timeout", "200"}, nil, io.Discard)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("validation: %v is not ErrInvalidConfig", err)
	}
}

func TestParseConfigHelp(t *testing.T) {
	var buf bytes.Buffer
	_, err := ParseConfig([]string{"--help"}, nil, &buf)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"Usage: cairn serve", "-listen-client-urls", "-initial-cluster", "CAIRN_"} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("usage lacks %q:\n%s", w, buf.String())
		}
	}
}

func TestValidateMessages(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"empty name", func(c *Config) { c.Name = "" }, "--name must not be empty"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "--data-dir must not be empty"},
		{"no listen client urls", func(c *Config) { c.ListenClientURLs = nil }, "--listen-client-urls must name at least one URL"},
		{"https", func(c *Config) { c.ListenClientURLs = urls(t, "https://127.0.0.1:2379") }, "--listen-client-urls https://127.0.0.1:2379: TLS is not supported yet"},
		{"unix scheme", func(c *Config) { c.AdvertiseClientURLs = urls(t, "unix://sock:1") }, `--advertise-client-urls unix://sock:1: scheme "unix" is not supported; use http://`},
		{"no port", func(c *Config) { c.ListenPeerURLs = urls(t, "http://127.0.0.1") }, "--listen-peer-urls http://127.0.0.1: want http://host:port with an explicit port"},
		{"bad port", func(c *Config) { c.ListenPeerURLs = urls(t, "http://127.0.0.1:99999") }, `--listen-peer-urls http://127.0.0.1:99999: bad port "99999"`},
		{"path", func(c *Config) { c.ListenClientURLs = urls(t, "http://127.0.0.1:2379/x") }, "must not have a path"},
		{"metrics https", func(c *Config) { c.ListenMetricsURLs = urls(t, "https://127.0.0.1:9090") }, "--listen-metrics-urls https://127.0.0.1:9090: TLS is not supported yet"},
		{"cluster state", func(c *Config) { c.InitialClusterState = "old" }, `--initial-cluster-state "old" must be new or existing`},
		{"token", func(c *Config) { c.InitialClusterToken = "" }, "--initial-cluster-token must not be empty"},
		{"empty cluster", func(c *Config) { c.InitialCluster = nil }, "--initial-cluster must name at least one member"},
		{"name not in cluster", func(c *Config) {
			c.InitialCluster = map[string][]url.URL{"a": urls(t, "http://127.0.0.1:2380")}
		}, `--name "default" is missing from --initial-cluster (a=http://127.0.0.1:2380)`},
		{"advertise not in cluster", func(c *Config) {
			c.InitialAdvertisePeerURLs = urls(t, "http://10.0.0.9:2380")
		}, "--initial-advertise-peer-urls http://10.0.0.9:2380 is not in --initial-cluster for default (http://127.0.0.1:2380)"},
		{"cluster url not advertised", func(c *Config) {
			c.InitialCluster = map[string][]url.URL{"default": urls(t, "http://127.0.0.1:2380,http://10.0.0.1:2380")}
		}, "--initial-cluster lists http://10.0.0.1:2380 for default but --initial-advertise-peer-urls (http://127.0.0.1:2380) does not"},
		{"duplicate peer url", func(c *Config) {
			c.InitialCluster["b"] = urls(t, "http://127.0.0.1:2380")
		}, "--initial-cluster peer URL http://127.0.0.1:2380 is listed for both b and default"},
		{"cluster https", func(c *Config) {
			c.InitialCluster["b"] = urls(t, "https://10.0.0.2:2380")
		}, "--initial-cluster member b https://10.0.0.2:2380: TLS is not supported yet"},
		{"snapshot count", func(c *Config) { c.SnapshotCount = 0 }, "--snapshot-count must be greater than 0"},
		{"catch-up entries", func(c *Config) { c.SnapshotCatchUpEntries = 0 }, "--snapshot-catchup-entries must be greater than 0"},
		{"heartbeat zero", func(c *Config) { c.HeartbeatInterval = 0 }, "--heartbeat-interval (0s) must be positive"},
		{"election too short", func(c *Config) { c.ElectionTimeout = 499 * time.Millisecond }, "--election-timeout (499ms) must be at least 5x --heartbeat-interval (100ms)"},
		{"election too long", func(c *Config) { c.ElectionTimeout = time.Minute }, "--election-timeout (1m0s) must be at most 50s"},
		{"max request bytes", func(c *Config) { c.MaxRequestBytes = 0 }, "--max-request-bytes (0) must be positive"},
		{"max txn ops", func(c *Config) { c.MaxTxnOps = 0 }, "--max-txn-ops (0) must be at least 1"},
		{"compaction mode", func(c *Config) { c.AutoCompactionMode = "daily" }, `--auto-compaction-mode "daily" must be periodic or revision`},
		{"periodic retention", func(c *Config) { c.AutoCompactionRetention = "soon" }, `--auto-compaction-retention "soon" must be a non-negative number of hours`},
		{"revision retention", func(c *Config) {
			c.AutoCompactionMode, c.AutoCompactionRetention = "revision", "1h"
		}, `--auto-compaction-retention "1h" must be a non-negative revision count with --auto-compaction-mode revision`},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, `--log-level "loud" must be debug, info, warn or error`},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, `--log-format "xml" must be text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v is not ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.SnapshotCount, c.MaxTxnOps = 0, 0
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("err = %v, want a ConfigError with 2 problems", err)
	}
}

func TestValidateElectionExactly5x(t *testing.T) {
	c := DefaultConfig()
	c.ElectionTimeout = 5 * c.HeartbeatInterval
	if err := c.Validate(); err != nil {
		t.Fatalf("5x heartbeat rejected: %v", err)
	}
}

func TestAutoCompaction(t *testing.T) {
	tests := []struct {
		mode, retention string
		period          time.Duration
		revs            int64
		bad             bool
	}{
		{"periodic", "0", 0, 0, false},
		{"periodic", "", 0, 0, false},
		{"periodic", "1", time.Hour, 0, false},
		{"periodic", "72", 72 * time.Hour, 0, false},
		{"periodic", "1h", time.Hour, 0, false},
		{"periodic", "30m", 30 * time.Minute, 0, false},
		{"periodic", "-1", 0, 0, true},
		{"periodic", "-5m", 0, 0, true},
		{"periodic", "1.5", 0, 0, true},
		{"periodic", "99999999999999", 0, 0, true},
		{"revision", "0", 0, 0, false},
		{"revision", "1000", 0, 1000, false},
		{"revision", "1h", 0, 0, true},
		{"revision", "-3", 0, 0, true},
		{"weekly", "1", 0, 0, true},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.AutoCompactionMode, c.AutoCompactionRetention = tt.mode, tt.retention
		mode, period, revs, err := c.AutoCompaction()
		if (err != nil) != tt.bad {
			t.Errorf("%s %q: err = %v, want error %v", tt.mode, tt.retention, err, tt.bad)
			continue
		}
		if tt.bad {
			continue
		}
		if mode != tt.mode || period != tt.period || revs != tt.revs {
			t.Errorf("%s %q = %s %v %d, want %s %v %d", tt.mode, tt.retention, mode, period, revs, tt.mode, tt.period, tt.revs)
		}
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	c := DefaultConfig()
	c.LogFormat, c.LogLevel = "json", "warn"
	lg := c.Logger(&buf)
	lg.Info("hidden")
	lg.Warn("shown", "k", 1)
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, `"msg":"shown"`) {
		t.Errorf("json/warn output: %q", out)
	}
	buf.Reset()
	c.LogFormat, c.LogLevel = "text", "debug"
	c.Logger(&buf).Debug("dbg")
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "msg=dbg") {
		t.Errorf("text/debug output: %q", out)
	}
}

func TestInitialClusterValue(t *testing.T) {
	var m map[string][]url.URL
	v := (*clusterValue)(&m)
	if err := v.Set("a=http://h1:2380, b=http://h2:2380,a=http://h1b:2380"); err != nil {
		t.Fatal(err)
	}
	if got := v.String(); got != "a=http://h1:2380,a=http://h1b:2380,b=http://h2:2380" {
		t.Errorf("String() = %s", got)
	}
	for _, bad := range []string{"a", "=http://h:1", "a=", "a=h1:2380", "a=http://"} {
		if err := v.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestDecodeConfigYAML(t *testing.T) {
	tests := []struct {
		in   string
		want []yamlKV
		bad  string
	}{
		{in: "", want: nil},
		{in: "# only a comment\n", want: nil},
		{in: "name: a\nsnapshot-count: 5\n", want: []yamlKV{{"name", "a", 1}, {"snapshot-count", "5", 2}}},
		{in: "listen-client-urls:\n  - http://a:1\n  - http://b:2\n", want: []yamlKV{{"listen-client-urls", "http://a:1,http://b:2", 1}}},
		{in: "listen-metrics-urls:\n", want: []yamlKV{{"listen-metrics-urls", "", 1}}},
		{in: "- a\n- b\n", bad: "want a mapping"},
		{in: "name: a\nname: b\n", bad: `duplicate key "name"`},
		{in: "name: {x: 1}\n", bad: "want a value or a list"},
		{in: "name: [[1]]\n", bad: "list items must be plain values"},
		{in: "name: [\n", bad: "yaml"},
	}
	for _, tt := range tests {
		got, err := decodeConfigYAML([]byte(tt.in))
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.bad)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzDecodeConfigYAML(f *testing.F) {
	f.Add("name: a\nsnapshot-count: 5\n")
	f.Add("listen-client-urls: [http://a:1, http://b:2]\n")
	f.Add("initial-cluster: a=http://h:1,b=http://h:2\n")
	f.Add("- x\n")
	f.Add("a: &x 1\nb: *x\n")
	f.Fuzz(func(t *testing.T, in string) {
		kvs, err := decodeConfigYAML([]byte(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, kv := range kvs {
			if seen[kv.key] {
				t.Fatalf("duplicate key %q returned", kv.key)
			}
			seen[kv.key] = true
		}
	})
}

func FuzzParseConfigFlags(f *testing.F) {
	f.Add("--initial-cluster", "a=http://127.0.0.1:2380")
	f.Add("--listen-client-urls", "http://127.0.0.1:1,http://[::1]:2")
	f.Add("--heartbeat-interval", "10ms")
	f.Add("--auto-compaction-retention", "5")
	f.Fuzz(func(t *testing.T, name, value string) {
		cfg, err := ParseConfig([]string{name, value}, nil, io.Discard)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig returned a config that does not validate: %v", err)
		}
	})
}
