package watch

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxPending       = 128 // etcd's watch stream buffer length too
	DefaultSyncInterval     = 100 * time.Millisecond
	DefaultProgressInterval = 10 * time.Minute
	DefaultResponseBytes    = 3 << 19 // 1.5 MiB, etcd's default --max-request-bytes
)

// Config configures a Registry. The zero value is usable: every zero field takes its default.
type Config struct {
	// MaxPending bounds each stream's queue of undelivered responses (default 128). The queue grows as needed
	// up to that (112 bytes a response); the send loop takes it all at once and sends the batch while the
	// queue fills again, so a stream holds at most 2 x MaxPending responses (at most 28 KiB by default, allocated as the queue grows).
	// The events the queued responses point to are bounded too: a response carries at most about ResponseBytes of
	// events plus one revision's worth (one applied txn), so a stream pins at most about
	// 2 x MaxPending x (ResponseBytes + the largest txn) bytes, plus a backlog of control responses (created,
	// canceled, explicitly requested progress: at most MaxPending of them, Create and Cancel wait when it is
	// full) and the remaining fragments of at most one fragmented response. A stream whose queue is full gets
	// nothing more from Notify: its watchers fall behind and are caught up from history later.
	MaxPending int

	// SyncInterval is how often watchers that are behind are caught up from history (default 100ms, as etcd's
	// only schedule). Cairn does not wait for it when it knows there is work: a catch-up pass also runs as soon as
	// a stream with watchers behind has its queue taken by its send loop, when a watcher is created at a past
	// revision, and after Restored. The timer is the fallback (a history read that failed, for instance).
	// Ticks, when set, replaces the timer and those prompt passes: a catch-up pass runs only on each value
	// received (tests inject time so).
	SyncInterval time.Duration
	Ticks        <-chan time.Time

	// ProgressInterval is the period of progress notifications for watchers that asked for them (default 10
	// minutes, etcd's). ProgressTicks, when set, replaces the timer.
	ProgressInterval time.Duration
	ProgressTicks    <-chan time.Time

	// ResponseBytes is the soft size budget of one response's events, counted as the lengths of keys, values and
	// previous values plus 64 bytes per KeyValue (default 1.5 MiB, etcd's default request size limit, which is
	// also its fragmenting threshold). Responses are cut at a revision boundary once they reach it (never inside
	// a revision); for watchers that asked for Fragment, a response larger than it is split into fragments of at
	// most that size (a single larger event goes alone), every one but the last with Fragment set.
	ResponseBytes int

	// MaxEventsPerResponse additionally caps the number of events of one fragment for watchers that asked for
	// Fragment; 0 (the default) means no cap by count, only ResponseBytes.
	MaxEventsPerResponse int

	// Logger receives state transitions (default: discard).
	Logger *slog.Logger

	// ObserveSendDelay, when set, receives for every events response the time from its being queued to
	// Stream.Sent: the fan-out delay the server adds (the metric cairn_watch_send_delay_seconds).
	ObserveSendDelay func(time.Duration)

	// CountFellBehind, when set, is called each time a synced watcher is moved aside because its stream's queue
	// was full (the metric cairn_watch_fell_behind_total). It runs under the registry's lock: it must be quick.
	CountFellBehind func()
}

// Validate reports the first bad field, naming it. Zero fields are fine (they take defaults).
func (c Config) Validate() error {
	switch {
	case c.MaxPending < 0:
		return fmt.Errorf("%w: MaxPending %d is negative", ErrBadConfig, c.MaxPending)
	case c.SyncInterval < 0:
		return fmt.Errorf("%w: SyncInterval %v is negative", ErrBadConfig, c.SyncInterval)
	case c.ProgressInterval < 0:
		return fmt.Errorf("%w: ProgressInterval %v is negative", ErrBadConfig, c.ProgressInterval)
	case c.ResponseBytes < 0:
		return fmt.Errorf("%w: ResponseBytes %d is negative", ErrBadConfig, c.ResponseBytes)
	case c.MaxEventsPerResponse < 0:
		return fmt.Errorf("%w: MaxEventsPerResponse %d is negative", ErrBadConfig, c.MaxEventsPerResponse)
	}
	return nil
}

// withDefaults fills zero (and, defensively, negative) fields.
func (c Config) withDefaults() Config {
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.ResponseBytes <= 0 {
		c.ResponseBytes = DefaultResponseBytes
	}
	if c.MaxEventsPerResponse < 0 {
		c.MaxEventsPerResponse = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
