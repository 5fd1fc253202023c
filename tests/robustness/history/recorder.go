package history

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotApplied marks an error that guarantees the request had no effect
// (for example a client-side validation failure). Wrap it with %w and the
// recorder drops the request instead of treating its outcome as unknown.
var ErrNotApplied = errors.New("history: request definitely not applied")

// OpKind names a register operation.
type OpKind uint8

// The recorded operation kinds.
const (
	OpGet OpKind = iota + 1
	OpPut
	OpDelete
	OpCAS
)

func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "get"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpCAS:
		return "cas"
	}
	return "invalid"
}

// Request is the Input of a recorded porcupine.Operation.
type Request struct {
	Kind  OpKind
	Key   string
	Value string // put and CAS: the value written
	// Expect is the CAS condition: the key holds exactly this value, or,
	// when empty, the key is absent (create_revision == 0).
	Expect string
}

// Response is the Output of a recorded porcupine.Operation.
type Response struct {
	// Unknown is set when the request failed with an error that does not
	// rule out its effect; the other result fields are then meaningless.
	Unknown bool
	Err     string        // the error text when Unknown
	ErrAt   time.Duration // when the client saw the error (Return is +inf)

	Value  string // get
	Exists bool   // get
	ModRev int64  // get: mod_revision of the key when Exists

	Deleted   int64 // delete: number of keys deleted (0 or 1)
	Succeeded bool  // CAS: whether the comparison held

	Rev int64 // header revision of the response
}

// GetResult is what a successful Get returned.
type GetResult struct {
	Value  string
	Exists bool
	ModRev int64
	Rev    int64 // header revision
}

// DefinitelyNotApplied is the default classifier of write errors: it reports
// true only for errors that guarantee the request never reached the state
// machine: ErrNotApplied and the gRPC codes InvalidArgument, PermissionDenied
// and Unauthenticated (whether carried by a status error or by an error type
// with a Code() codes.Code method, such as the etcd client's EtcdError).
// Everything else (deadlines, Unavailable, lost connections, cancellation)
// leaves the outcome unknown. Misclassifying an ambiguous error as definite
// can produce false "Illegal" verdicts; the reverse only costs checker time.
func DefinitelyNotApplied(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotApplied) {
		return true
	}
	code := codes.Unknown
	var coder interface{ Code() codes.Code }
	if s, ok := status.FromError(err); ok {
		code = s.Code()
	} else if errors.As(err, &coder) {
		code = coder.Code()
	}
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated:
		return true
	}
	return false
}

// RecorderOption configures a Recorder.
type RecorderOption func(*Recorder)

// WithDefiniteFailure replaces DefinitelyNotApplied as the classifier of
// write errors.
func WithDefiniteFailure(fn func(error) bool) RecorderOption {
	return func(r *Recorder) { r.definite = fn }
}

// Recorder collects a history of register operations. It is safe for
// concurrent use; each client goroutine passes its own small client id
// (0, 1, 2, ...) and timestamps from one monotonic clock.
type Recorder struct {
	definite func(error) bool

	mu            sync.Mutex // protects the fields below
	ops           []porcupine.Operation
	droppedReads  int
	droppedWrites int
}

// NewRecorder returns an empty recorder.
func NewRecorder(opts ...RecorderOption) *Recorder {
	r := &Recorder{definite: DefinitelyNotApplied}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Get records a range read of a single key. A failed read is dropped: it
// had no effect.
func (r *Recorder) Get(client int, key string, call, ret time.Duration, resp GetResult, err error) {
	if err != nil {
		r.mu.Lock()
		r.droppedReads++
		r.mu.Unlock()
		return
	}
	r.add(client, call, ret, Request{Kind: OpGet, Key: key},
		Response{Value: resp.Value, Exists: resp.Exists, ModRev: resp.ModRev, Rev: resp.Rev}, nil)
}

// Put records a put; rev is the response header revision.
func (r *Recorder) Put(client int, key, value string, call, ret time.Duration, rev int64, err error) {
	r.add(client, call, ret, Request{Kind: OpPut, Key: key, Value: value}, Response{Rev: rev}, err)
}

// Delete records a single-key delete; deleted is the response's Deleted.
func (r *Recorder) Delete(client int, key string, call, ret time.Duration, deleted int64, rev int64, err error) {
	r.add(client, call, ret, Request{Kind: OpDelete, Key: key}, Response{Deleted: deleted, Rev: rev}, err)
}

// CAS records the transaction "if value(key) == expect then put(key, value)";
// expect == "" means "if the key is absent".
func (r *Recorder) CAS(client int, key, expect, value string, call, ret time.Duration, succeeded bool, rev int64, err error) {
	r.add(client, call, ret, Request{Kind: OpCAS, Key: key, Value: value, Expect: expect},
		Response{Succeeded: succeeded, Rev: rev}, err)
}

func (r *Recorder) add(client int, call, ret time.Duration, req Request, resp Response, err error) {
	if err != nil {
		if r.definite(err) {
			r.mu.Lock()
			r.droppedWrites++
			r.mu.Unlock()
			return
		}
		resp = Response{Unknown: true, Err: err.Error(), ErrAt: ret}
		ret = time.Duration(math.MaxInt64)
	}
	op := porcupine.Operation{ClientId: client, Input: req, Call: int64(call), Output: resp, Return: int64(ret)}
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// Operations returns a copy of the history. Writes with an unknown outcome
// return at the end of the history (one nanosecond after the latest
// timestamp recorded).
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	var end int64
	for _, op := range ops {
		end = max(end, op.Call)
		if resp := op.Output.(Response); resp.Unknown {
			end = max(end, int64(resp.ErrAt))
		} else {
			end = max(end, op.Return)
		}
	}
	for i := range ops {
		if ops[i].Output.(Response).Unknown {
			ops[i].Return = end + 1
		}
	}
	return ops
}

// Stats counts what the recorder kept and dropped.
type Stats struct {
	Operations    int // recorded operations, including unknown outcomes
	Unknown       int // writes recorded with an unknown outcome
	DroppedReads  int // reads that failed (no effect, not recorded)
	DroppedWrites int // writes that definitely failed (not recorded)
}

// Stats returns counters describing the recorded history.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Operations: len(r.ops), DroppedReads: r.droppedReads, DroppedWrites: r.droppedWrites}
	for _, op := range r.ops {
		if op.Output.(Response).Unknown {
			s.Unknown++
		}
	}
	return s
}
