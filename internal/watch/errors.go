package watch

import "errors"

// Errors returned by Stream.Create. Their texts are etcd 3.7's, because Create also puts them, as the
// CancelReason of a created-and-canceled response, on the stream.
var (
	// ErrEmptyRange: the range end is set (and is not "\x00") but does not sort after the key.
	ErrEmptyRange = errors.New("mvcc: watcher range is empty")
	// ErrDuplicateWatchID: the stream already has a watcher with the requested id.
	ErrDuplicateWatchID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	// ErrNegativeStartRev: a negative start revision; etcd answers it as if the revision had been compacted.
	ErrNegativeStartRev = errors.New("etcdserver: mvcc: required revision has been compacted")
	// ErrStreamClosed: the stream was closed (by Close or Registry.Stop); nothing is put on it.
	ErrStreamClosed = errors.New("watch: stream closed")
	// ErrBadConfig: Config.Validate found a bad field (the message names it).
	ErrBadConfig = errors.New("watch: bad config")
)
