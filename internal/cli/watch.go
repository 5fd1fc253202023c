package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// errWatchCanceled is returned when the server cancels the watch (for example
// because its start revision has been compacted) or the watch stream fails
// for good (no leader). Exit code 1.
var errWatchCanceled = errors.New("watch canceled")

// watchOptions are the flags and arguments of `watch`.
type watchOptions struct {
	key, end       string
	prefix         bool
	rev            int64
	prevKV         bool
	count          int64
	progressNotify bool
}

func (o *watchOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.prefix, "prefix", false, "watch every key starting with KEY")
	fs.Int64Var(&o.rev, "rev", 0, "start at revision `N`, replaying history from there (0: from now)")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "also print the key-value pair before each event")
	fs.Int64Var(&o.count, "count", 0, "exit 0 after `N` events (0: run until interrupted)")
	fs.BoolVar(&o.progressNotify, "progress-notify", false, "ask the server for periodic progress notifications (printed in table and json)")
}

// setArgs validates the flags and takes KEY [RANGE_END].
func (o *watchOptions) setArgs(args []string) error {
	key, end, err := rangeArgs("watch", args, o.prefix, false)
	if err != nil {
		return err
	}
	o.key, o.end = key, end
	if o.rev < 0 {
		return usagef("--rev must not be negative")
	}
	if o.count < 0 {
		return usagef("--count must not be negative")
	}
	return nil
}

func (o *watchOptions) opts() []clientv3.OpOption {
	opts := rangeOpts(o.end, o.prefix, false)
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.progressNotify {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	return opts
}

// watchCancelError turns the final response of a canceled watch into the
// error the user sees: "watch canceled: <reason>".
func watchCancelError(wr *clientv3.WatchResponse) error {
	if wr.CompactRevision != 0 {
		return fmt.Errorf("%w: required revision has been compacted (compact revision %d)", errWatchCanceled, wr.CompactRevision)
	}
	if err := wr.Err(); err != nil {
		return fmt.Errorf("%w: %s", errWatchCanceled, requestErrorText(err))
	}
	return fmt.Errorf("%w by the server", errWatchCanceled)
}

// watchLoop prints the responses of wch until --count events were printed
// (nil), ctx ends (nil when interrupted without --count, ctx.Err() when the
// count was not reached), the watch is canceled (errWatchCanceled) or the
// channel closes.
func (inv *invocation) watchLoop(ctx context.Context, wch clientv3.WatchChan, o *watchOptions) error {
	p := inv.printer()
	var seen int64
	interrupted := func() error {
		if o.count > 0 {
			return ctx.Err()
		}
		return nil // interrupting is how an endless watch ends
	}
	for {
		var wr clientv3.WatchResponse
		var ok bool
		select {
		case <-ctx.Done():
			return interrupted()
		case wr, ok = <-wch:
		}
		if !ok {
			if ctx.Err() != nil {
				return interrupted()
			}
			return fmt.Errorf("%w: the watch stream closed", errWatchCanceled)
		}
		if wr.Canceled || wr.CompactRevision != 0 || wr.Err() != nil {
			// Events delivered with the cancel still count.
			if err := p.watchEvents(wr.Events, o, &seen); err != nil || (o.count > 0 && seen >= o.count) {
				return err
			}
			return watchCancelError(&wr)
		}
		if wr.IsProgressNotify() {
			if err := p.watchProgress(wr.Header); err != nil {
				return err
			}
			continue
		}
		if err := p.watchEvents(wr.Events, o, &seen); err != nil {
			return err
		}
		if o.count > 0 && seen >= o.count {
			return nil
		}
	}
}

// jsonEvent is one watch event in -o json: etcd's mvccpb.Event field names,
// with the type as a string.
type jsonEvent struct {
	Type   string  `json:"type"`
	KV     jsonKV  `json:"kv"`
	PrevKV *jsonKV `json:"prev_kv,omitempty"`
}

// jsonProgress is a progress notification in -o json.
type jsonProgress struct {
	Header         *jsonHeader `json:"header"`
	ProgressNotify bool        `json:"progress_notify"`
}

func eventType(ev *mvccpb.Event) string {
	if ev.Type == mvccpb.DELETE {
		return "DELETE"
	}
	return "PUT"
}

// watchEvents prints events, stopping after --count events in total; seen
// counts the events printed so far.
func (p printer) watchEvents(evs []*mvccpb.Event, o *watchOptions, seen *int64) error {
	for _, ev := range evs {
		if o.count > 0 && *seen >= o.count {
			return nil
		}
		if err := p.watchEvent(ev); err != nil {
			return err
		}
		*seen++
	}
	return nil
}

// watchEvent prints one event:
//
//	table: PUT key value (rev N[, prev VALUE])   DELETE key (rev N[, prev VALUE])
//	json:  {"type":"PUT","kv":{...},"prev_kv":{...}}
//	value: the value of a PUT, raw; nothing for a DELETE
func (p printer) watchEvent(ev *mvccpb.Event) error {
	kv := ev.Kv
	if kv == nil {
		kv = &mvccpb.KeyValue{}
	}
	switch p.format {
	case outputJSON:
		j := jsonEvent{Type: eventType(ev), KV: toJSONKV(kv, false)}
		if ev.PrevKv != nil {
			prev := toJSONKV(ev.PrevKv, false)
			j.PrevKV = &prev
		}
		return p.json(j)
	case outputValue:
		if ev.Type == mvccpb.DELETE {
			return nil
		}
		return p.lines(string(kv.Value))
	default:
		line := eventType(ev) + " " + displayWord(string(kv.Key))
		if ev.Type != mvccpb.DELETE {
			line += " " + displayWord(string(kv.Value))
		}
		line += " (rev " + strconv.FormatInt(kv.ModRevision, 10)
		if ev.PrevKv != nil {
			line += ", prev " + displayWord(string(ev.PrevKv.Value))
		}
		return p.lines(line + ")")
	}
}

// displayWord is display that also quotes strings with spaces, so that the
// key and the value of a watch line stay apart.
func displayWord(s string) string {
	if strings.ContainsRune(s, ' ') {
		return strconv.Quote(s)
	}
	return display(s)
}

// watchProgress prints a progress notification (nothing with -o value).
func (p printer) watchProgress(h *pb.ResponseHeader) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonProgress{Header: toJSONHeader(h), ProgressNotify: true})
	case outputValue:
		return nil
	default:
		return p.lines("PROGRESS (rev " + strconv.FormatInt(h.GetRevision(), 10) + ")")
	}
}

func watchVerb() *verb {
	return &verb{
		name:    "watch",
		args:    "KEY [RANGE_END]",
		summary: "print changes to a key or a range of keys as they happen",
		help: `Watches KEY, or the keys in [KEY, RANGE_END), or with --prefix every key that
starts with KEY (an empty KEY "" with --prefix means all keys), and prints
each change as it happens. With --rev N the watch starts at revision N and
first replays the history from there. It runs until interrupted (exit 0),
or until --count events were printed (exit 0). When the server cancels the
watch, e.g. because --rev is older than the compacted revision, or when the
cluster has no leader, it prints why and exits 1:

  cairn: watch canceled: required revision has been compacted (compact revision 7)

--command-timeout does not apply: a watch has no deadline.

Output: table prints one line per event, "PUT KEY VALUE (rev N)" or
"DELETE KEY (rev N)", with ", prev VALUE" before the ")" when --prev-kv
(keys and values Go-quoted when they are empty or have spaces or control
characters), and "PROGRESS (rev N)" for a progress notification; -o json
prints one object per event with etcd's field names ({"type":"PUT","kv":
{...},"prev_kv":{...}}) and {"header":{...},"progress_notify":true} for a
progress notification; -o value prints the value of each PUT, raw, one per
line, and nothing for a DELETE or a progress notification.`,
		register: func(fs *flag.FlagSet) any {
			o := &watchOptions{}
			o.register(fs)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*watchOptions)
			if err := o.setArgs(args); err != nil {
				return err
			}
			cli, err := inv.connect(ctx)
			if err != nil {
				return err
			}
			defer cli.Close()
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			defer cancel()
			return inv.watchLoop(wctx, cli.Watch(wctx, o.key, o.opts()...), o)
		},
	}
}
