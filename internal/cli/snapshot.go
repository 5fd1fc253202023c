package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// The snapshot verbs: save downloads a backup (Maintenance.Snapshot, the
// format of internal/server/backup.go), status checks and describes one,
// restore seeds a new member's data dir from one (daemon.Restore), like
// etcdctl snapshot save and etcdutl snapshot status|restore.

// snapshotSubVerbs names the snapshot sub-verbs for the error of a bare
// `cairn snapshot`.
const snapshotSubVerbs = "save, status or restore"

// partSuffix is appended to FILE while `snapshot save` downloads it
// (etcdctl's name for the file in progress).
const partSuffix = ".part"

func snapshotSaveVerb() *verb {
	return &verb{
		name:    "snapshot save",
		args:    "FILE",
		summary: "download a backup of the cluster's state into FILE",
		help: `Streams a backup of the state (Maintenance.Snapshot) from one member, the
first of --endpoints (as etcdctl does), into FILE.part, checks it (SHA-256 and
structure), fsyncs it and renames it to FILE. On a terminal, stderr shows the
bytes received so far. A failed or damaged download removes FILE.part and
exits 1; an existing FILE is only replaced by a complete, intact backup.
The whole download must finish within --command-timeout: raise it for a
large store.

Restore the file into a new cluster with 'cairn snapshot restore'. 'etcdctl
snapshot save' against Cairn writes the same kind of file (but does not check
its SHA-256: 'cairn snapshot status' does).

Output: table prints etcdctl's "Snapshot saved at FILE"; -o json prints the
backup's description (as 'cairn snapshot status -o json'); -o value prints
FILE.`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			if len(args) != 1 {
				return usagef("snapshot save takes exactly one argument: FILE")
			}
			path := args[0]
			eps, err := inv.g.endpointList()
			if err != nil {
				return err
			}
			ep := eps[0]
			cli, err := inv.dial(ctx, eps[:1])
			if err != nil {
				return err
			}
			defer cli.Close()
			rctx, cancel := inv.requestContext(ctx)
			defer cancel()
			rc, err := cli.Snapshot(rctx)
			if err != nil {
				return fmt.Errorf("snapshot from %s: %w", ep, err)
			}
			defer rc.Close()
			var prog *progress
			if isTerminal(inv.stderr) {
				prog = &progress{w: inv.stderr}
			}
			bf, err := saveBackup(vfs.OS(), path, rc, prog)
			if err != nil {
				return fmt.Errorf("snapshot from %s: %w", ep, err)
			}
			return inv.printer().snapshotSaved(bf)
		},
	}
}

func snapshotStatusVerb() *verb {
	return &verb{
		name:    "snapshot status",
		args:    "FILE",
		summary: "check a backup file and describe it",
		help: `Checks the backup FILE (its SHA-256 and structure; exit 1 if it is damaged or
not a Cairn backup) and describes it: the revision, the number of keys and
leases, the members of the cluster it came from, its size, when it was made
and by which member. No member is contacted.

Output: table prints REVISION, KEYS, LEASES, MEMBERS, SIZE, CREATED and MADE
BY; -o json prints one object: path, size, sha256 and the backup's header
(cluster_id, member_id, index, revision, compact_revision, keys, leases,
members, created); -o value prints the table's fields separated by tabs.`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(_ context.Context, inv *invocation, _ any, args []string) error {
			if len(args) != 1 {
				return usagef("snapshot status takes exactly one argument: FILE")
			}
			_, bf, err := readBackup(args[0])
			if err != nil {
				return err
			}
			return inv.printer().snapshotStatus(bf)
		},
	}
}

// restoreFlags are the `cairn serve` flags that `snapshot restore` takes.
// They are parsed and checked by daemon.ParseConfig, as serve's are.
var restoreFlags = []string{"data-dir", "name", "initial-cluster", "initial-cluster-token", "initial-advertise-peer-urls"}

type restoreOptions struct {
	fs *flag.FlagSet // the verb's flags: which of restoreFlags were set
}

func snapshotRestoreVerb() *verb {
	return &verb{
		name:    "snapshot restore",
		args:    "FILE",
		summary: "create a new member's data dir from a backup",
		help: `Creates the data dir of one member of a new cluster whose state is the backup
FILE's: the same keys, history, revision and leases, with --initial-cluster
as its members (and a new cluster ID). Run it once per member, each time with
the same FILE, --initial-cluster and --initial-cluster-token and the member's
own --name, --data-dir and --initial-advertise-peer-urls; then start each
member with 'cairn serve' on its data dir. The flags are those of 'cairn
serve', with the same defaults, and --initial-advertise-peer-urls must be
--name's URLs in --initial-cluster. A data dir that already holds a member
is refused. No member is contacted.

Example, for member m1 of three:

  cairn snapshot restore backup.db --name m1 --data-dir /var/lib/cairn \
    --initial-cluster m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m3=http://10.0.0.3:2380 \
    --initial-cluster-token restored-1 --initial-advertise-peer-urls http://10.0.0.1:2380

Output: table says what was restored where; -o json prints data_dir, name,
initial_cluster, initial_cluster_token and the backup's description (as
'cairn snapshot status -o json'); -o value prints the data dir.`,
		register: func(fs *flag.FlagSet) any {
			fs.String("data-dir", daemon.DefaultDataDir, "the new member's data `DIR` (must not hold a member)")
			fs.String("name", daemon.DefaultName, "the new member's `NAME`, one of --initial-cluster")
			fs.String("initial-cluster", "", "the new cluster's members, `NAME=URL,...` (default: <name>=<initial-advertise-peer-urls>)")
			fs.String("initial-cluster-token", daemon.DefaultInitialClusterToken, "the new cluster's `TOKEN` (a new one for each restored cluster)")
			fs.String("initial-advertise-peer-urls", daemon.DefaultListenPeerURL, "the new member's peer `URLS`, as in --initial-cluster")
			return &restoreOptions{fs: fs}
		},
		run: func(_ context.Context, inv *invocation, opts any, args []string) error {
			if len(args) != 1 {
				return usagef("snapshot restore takes exactly one argument: FILE")
			}
			cfg, err := restoreConfig(opts.(*restoreOptions).fs)
			if err != nil {
				return err
			}
			b, bf, err := readBackup(args[0])
			if err != nil {
				return err
			}
			if _, err := daemon.Restore(cfg, b, vfs.OS()); err != nil {
				return fmt.Errorf("restore %s: %w", args[0], err)
			}
			return inv.printer().snapshotRestored(bf, cfg)
		},
	}
}

// serveHelpHint ends daemon.ParseConfig's flag syntax errors; restore has
// its own --help.
const serveHelpHint = " (run 'cairn serve --help')"

// restoreConfig parses and checks the restore flags that were set with
// `cairn serve`'s parser (daemon.ParseConfig: its syntax, defaults and
// checks; no environment and no config file), so that restore accepts
// exactly what serve accepts. A problem is a usage error.
func restoreConfig(fs *flag.FlagSet) (daemon.RestoreConfig, error) {
	var args []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(restoreFlags, f.Name) {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	cfg, err := daemon.ParseConfig(args, nil, io.Discard)
	if err != nil {
		return daemon.RestoreConfig{}, usagef("%s", strings.TrimSuffix(err.Error(), serveHelpHint))
	}
	return daemon.RestoreConfig{DataDir: cfg.DataDir, Name: cfg.Name, InitialCluster: cfg.InitialCluster, InitialClusterToken: cfg.InitialClusterToken}, nil
}

// backupFile is a backup file that server.ReadBackup accepted.
type backupFile struct {
	path string
	size int64
	sum  []byte // the SHA-256 at its end
	info server.BackupInfo
}

// readBackup reads the backup file path and verifies it (verifyBackup).
func readBackup(path string) ([]byte, backupFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, backupFile{}, err
	}
	bf, err := verifyBackup(path, b)
	return b, bf, err
}

// verifyBackup checks b, the content of the file path, with
// server.ReadBackup (errors.Is server.ErrBadBackup when it is damaged).
func verifyBackup(path string, b []byte) (backupFile, error) {
	info, _, err := server.ReadBackup(b)
	if err != nil {
		return backupFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return backupFile{path: path, size: int64(len(b)), sum: b[len(b)-sha256.Size:], info: info}, nil
}

// saveBackup writes the backup read from src to path: into path.part, which
// it syncs, reads back and verifies before renaming it to path and syncing
// the directory. On failure path.part is removed and path is untouched.
// prog, if not nil, shows the bytes received.
func saveBackup(fs vfs.FS, path string, src io.Reader, prog *progress) (backupFile, error) {
	part := path + partSuffix
	f, err := fs.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return backupFile{}, fmt.Errorf("cannot create %s: %w", part, err)
	}
	fail := func(err error) (backupFile, error) {
		f.Close()
		if rerr := fs.Remove(part); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return backupFile{}, fmt.Errorf("%w; removing %s also failed: %v", err, part, rerr)
		}
		return backupFile{}, fmt.Errorf("%w; removed %s", err, part)
	}
	cw := &countWriter{w: f, prog: prog}
	_, err = io.Copy(cw, src)
	prog.finish()
	if err != nil {
		return fail(fmt.Errorf("download failed after %d bytes: %w", cw.n, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("cannot write %s: %w", part, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("cannot write %s: %w", part, err))
	}
	b, err := readAll(fs, part)
	if err != nil {
		return fail(fmt.Errorf("cannot read back %s: %w", part, err))
	}
	bf, err := verifyBackup(path, b)
	if err != nil {
		return fail(fmt.Errorf("the downloaded snapshot is damaged: %w", err))
	}
	if err := fs.Rename(part, path); err != nil {
		return fail(fmt.Errorf("cannot rename %s to %s: %w", part, path, err))
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return backupFile{}, fmt.Errorf("%s is saved but may not survive a crash: cannot sync its directory: %w", path, err)
	}
	return bf, nil
}

func readAll(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// countWriter counts the bytes written through it and reports them to prog.
type countWriter struct {
	w    io.Writer
	n    int64
	prog *progress
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.prog.update(c.n)
	return n, err
}

// progressEvery is how often the progress line is redrawn at most.
const progressEvery = 100 * time.Millisecond

// progress redraws one terminal line, "received 12 MB (12345678 bytes)", as
// a download goes. A nil *progress shows nothing.
type progress struct {
	w     io.Writer
	now   func() time.Time // nil: time.Now
	n     int64
	shown time.Time // when the line was last drawn; zero before the first
}

func (p *progress) update(n int64) {
	if p == nil {
		return
	}
	p.n = n
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	if t := now(); t.Sub(p.shown) >= progressEvery {
		p.shown = t
		p.draw()
	}
}

func (p *progress) draw() {
	// \033[K clears what a longer previous line left.
	fmt.Fprintf(p.w, "\rreceived %s (%d bytes)\033[K", humanBytes(p.n), p.n)
}

// finish draws the final count and ends the line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}

// isTerminal reports whether w is a terminal (a character device; /dev/null
// is one too, which does no harm: the progress is discarded there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// jsonBackup describes a backup file in -o json: the file, then the
// backup's own header (server.BackupInfo's field names).
type jsonBackup struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	server.BackupInfo
}

func toJSONBackup(bf backupFile) jsonBackup {
	return jsonBackup{Path: bf.path, Size: bf.size, SHA256: hex.EncodeToString(bf.sum), BackupInfo: bf.info}
}

func (p printer) snapshotSaved(bf backupFile) error {
	switch p.format {
	case outputJSON:
		return p.json(toJSONBackup(bf))
	case outputValue:
		return p.lines(bf.path)
	default:
		return p.lines("Snapshot saved at " + bf.path)
	}
}

func (p printer) snapshotStatus(bf backupFile) error {
	switch p.format {
	case outputJSON:
		return p.json(toJSONBackup(bf))
	case outputValue:
		return p.lines(strings.Join(backupCells(bf), "\t"))
	default:
		return p.table([][]string{{"REVISION", "KEYS", "LEASES", "MEMBERS", "SIZE", "CREATED", "MADE BY"}, backupCells(bf)})
	}
}

func backupCells(bf backupFile) []string {
	i := bf.info
	return []string{formatInt(i.Revision), strconv.Itoa(i.Keys), strconv.Itoa(i.Leases), strconv.Itoa(len(i.Members)),
		humanBytes(bf.size), i.Created.UTC().Format(time.RFC3339), madeBy(i)}
}

// madeBy names the member that made a backup: "name (id)", or the ID alone
// if it is not in the backup's member table.
func madeBy(i server.BackupInfo) string {
	id := fmt.Sprintf("%x", i.MemberID)
	for _, m := range i.Members {
		if m.ID == i.MemberID && m.Name != "" {
			return m.Name + " (" + id + ")"
		}
	}
	return id
}

// jsonRestore is `snapshot restore` in -o json.
type jsonRestore struct {
	DataDir             string     `json:"data_dir"`
	Name                string     `json:"name"`
	InitialCluster      string     `json:"initial_cluster"`
	InitialClusterToken string     `json:"initial_cluster_token"`
	Backup              jsonBackup `json:"backup"`
}

func (p printer) snapshotRestored(bf backupFile, cfg daemon.RestoreConfig) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonRestore{DataDir: cfg.DataDir, Name: cfg.Name, InitialCluster: clusterText(cfg),
			InitialClusterToken: cfg.InitialClusterToken, Backup: toJSONBackup(bf)})
	case outputValue:
		return p.lines(cfg.DataDir)
	default:
		i := bf.info
		return p.lines(
			fmt.Sprintf("Restored %s (revision %d, %s, %s) into %s as member %s of a new cluster of %d (%s), token %s.",
				bf.path, i.Revision, plural(i.Keys, "key"), plural(i.Leases, "lease"), cfg.DataDir, cfg.Name,
				len(cfg.InitialCluster), strings.Join(clusterNames(cfg), ", "), cfg.InitialClusterToken),
			fmt.Sprintf("Start it with 'cairn serve --name %s --data-dir %s' and its listen URLs, once every member is restored.", cfg.Name, cfg.DataDir))
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func clusterNames(cfg daemon.RestoreConfig) []string {
	names := make([]string, 0, len(cfg.InitialCluster))
	for n := range cfg.InitialCluster {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// clusterText is the --initial-cluster value: name=url,..., sorted by name.
func clusterText(cfg daemon.RestoreConfig) string {
	var parts []string
	for _, n := range clusterNames(cfg) {
		for _, u := range cfg.InitialCluster[n] {
			parts = append(parts, n+"="+u.String())
		}
	}
	return strings.Join(parts, ",")
}
