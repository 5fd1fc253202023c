package history

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// d turns a small integer into a timestamp, to keep histories readable.
func d(n int) time.Duration { return time.Duration(n) }

var errLost = errors.New("connection lost")

func check(t *testing.T, r *Recorder, opts Options) Result {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.VisualizationDir == "" {
		opts.VisualizationDir = t.TempDir()
	}
	res, err := CheckWithOptions(r.Operations(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantOutcome(t *testing.T, r *Recorder, opts Options, want porcupine.CheckResult) {
	t.Helper()
	res := check(t, r, opts)
	if res.Outcome != want {
		for _, op := range r.Operations() {
			t.Logf("  c%d [%d, %d] %s", op.ClientId, op.Call, op.Return, DescribeOperation(op.Input.(Request), op.Output.(Response)))
		}
		t.Fatalf("want %s, got %v", want, res)
	}
	if want == porcupine.Illegal {
		fi, err := os.Stat(res.VisualizationPath)
		if err != nil || fi.Size() == 0 || res.VisualizationErr != nil {
			t.Fatalf("visualization %q: %v %v", res.VisualizationPath, err, res.VisualizationErr)
		}
	}
}

func TestSequentialOk(t *testing.T) {
	r := NewRecorder()
	r.Put(0, "a", "1", d(0), d(1), 2, nil)
	r.Get(0, "a", d(2), d(3), GetResult{Value: "1", Exists: true, ModRev: 2, Rev: 2}, nil)
	r.Put(0, "b", "x", d(4), d(5), 3, nil)
	r.CAS(0, "a", "1", "2", d(6), d(7), true, 4, nil)
	r.CAS(0, "a", "1", "3", d(8), d(9), false, 4, nil)
	r.Get(0, "a", d(10), d(11), GetResult{Value: "2", Exists: true, ModRev: 4, Rev: 4}, nil)
	r.Delete(0, "a", d(12), d(13), 1, 5, nil)
	r.Delete(0, "a", d(14), d(15), 0, 5, nil)
	r.Get(0, "a", d(16), d(17), GetResult{Rev: 5}, nil)
	r.CAS(0, "b", "", "y", d(18), d(19), false, 5, nil)
	r.CAS(0, "c", "", "z", d(20), d(21), true, 6, nil)
	r.Get(0, "b", d(22), d(23), GetResult{Value: "x", Exists: true, ModRev: 3, Rev: 6}, nil)
	wantOutcome(t, r, Options{}, porcupine.Ok)
}

func TestConcurrentOk(t *testing.T) {
	// Two overlapping puts may take effect in either order.
	r := NewRecorder()
	r.Put(0, "a", "x", d(0), d(10), 3, nil)
	r.Put(1, "a", "y", d(1), d(9), 2, nil)
	r.Get(2, "a", d(5), d(6), GetResult{Value: "y", Exists: true, ModRev: 2, Rev: 2}, nil)
	r.Get(2, "a", d(11), d(12), GetResult{Value: "x", Exists: true, ModRev: 3, Rev: 3}, nil)
	wantOutcome(t, r, Options{}, porcupine.Ok)
}

func TestIllegal(t *testing.T) {
	cases := map[string]func(r *Recorder){
		"stale read": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Put(0, "a", "y", d(20), d(30), 3, nil)
			r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
		},
		"lost write": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Get(1, "a", d(20), d(30), GetResult{Rev: 2}, nil)
		},
		"lost write, old header": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Get(1, "a", d(20), d(30), GetResult{Rev: 1}, nil)
		},
		"revision goes backwards": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Put(0, "b", "y", d(20), d(30), 3, nil)
			r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
		},
		"duplicate revision": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Put(1, "b", "y", d(5), d(15), 2, nil)
		},
		"cas succeeds on a wrong value": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.CAS(1, "a", "z", "w", d(20), d(30), true, 3, nil)
		},
		"cas on absence succeeds on a present key": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.CAS(1, "a", "", "w", d(20), d(30), true, 3, nil)
		},
		"cas fails on the right value": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.CAS(1, "a", "x", "w", d(20), d(30), false, 2, nil)
		},
		"delete of an absent key deletes": func(r *Recorder) {
			r.Delete(0, "a", d(0), d(10), 1, 2, nil)
		},
		"wrong mod revision": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Put(0, "b", "y", d(20), d(30), 3, nil)
			r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 3, Rev: 3}, nil)
		},
		"unknown write takes effect before its call": func(r *Recorder) {
			r.Get(0, "a", d(0), d(10), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
			r.Put(1, "a", "x", d(20), d(30), 0, errLost)
		},
		"unknown write takes effect twice": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 0, errLost)
			r.Get(1, "a", d(20), d(30), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
			r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 3, Rev: 3}, nil)
		},
		"revision gap nothing explains": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Put(0, "a", "y", d(20), d(30), 4, nil)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			r := NewRecorder()
			build(r)
			wantOutcome(t, r, Options{}, porcupine.Illegal)
		})
	}
}

func TestUnknownOutcome(t *testing.T) {
	cases := map[string]func(r *Recorder){
		"applied and read": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 0, context.DeadlineExceeded)
			r.Get(1, "a", d(20), d(30), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
		},
		"applied, seen only through the revision": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 0, context.DeadlineExceeded)
			r.Put(1, "b", "y", d(20), d(30), 3, nil)
			r.Get(1, "a", d(40), d(50), GetResult{Value: "z", Exists: true, ModRev: 4, Rev: 4}, nil)
			r.Put(1, "a", "z", d(35), d(36), 4, nil)
		},
		"not applied": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 0, context.DeadlineExceeded)
			r.Get(1, "a", d(20), d(30), GetResult{Rev: 1}, nil)
			r.Put(1, "a", "y", d(40), d(50), 2, nil)
		},
		"applied after the client gave up": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(5), 0, context.DeadlineExceeded)
			r.Get(1, "a", d(10), d(20), GetResult{Rev: 1}, nil)
			r.Get(1, "a", d(30), d(40), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
		},
		"unknown delete applied": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Delete(0, "a", d(20), d(30), 0, 0, errLost)
			r.Get(1, "a", d(40), d(50), GetResult{Rev: 3}, nil)
		},
		"unknown delete not applied": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.Delete(0, "a", d(20), d(30), 0, 0, errLost)
			r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 2}, nil)
		},
		"unknown cas applied, value never read": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 2, nil)
			r.CAS(0, "a", "x", "y", d(20), d(30), false, 0, errLost)
			r.CAS(1, "a", "x", "z", d(40), d(50), false, 3, nil)
		},
		"two unknown puts of one value": func(r *Recorder) {
			r.Put(0, "a", "x", d(0), d(10), 0, errLost)
			r.Put(1, "a", "x", d(0), d(10), 0, errLost)
			r.Get(2, "a", d(20), d(30), GetResult{Value: "x", Exists: true, ModRev: 3, Rev: 3}, nil)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			r := NewRecorder()
			build(r)
			wantOutcome(t, r, Options{}, porcupine.Ok)
		})
	}
}

func TestUnknownWindow(t *testing.T) {
	r := NewRecorder()
	r.Put(0, "a", "x", d(0), d(10), 0, errLost) // its revision is needed at 1000
	r.Get(1, "a", d(500), d(600), GetResult{Rev: 1}, nil)
	r.Put(1, "b", "y", d(1000), d(1010), 3, nil)
	wantOutcome(t, r, Options{}, porcupine.Ok)
	wantOutcome(t, r, Options{UnknownWindow: 2000}, porcupine.Ok)
	wantOutcome(t, r, Options{UnknownWindow: 100}, porcupine.Illegal)
}

func TestOtherWriters(t *testing.T) {
	r := NewRecorder()
	r.Put(0, "a", "x", d(0), d(10), 2, nil)
	r.Put(0, "b", "y", d(20), d(30), 5, nil)
	r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 2, Rev: 9}, nil)
	r.Delete(1, "c", d(60), d(70), 0, 9, nil)
	wantOutcome(t, r, Options{}, porcupine.Illegal)
	wantOutcome(t, r, Options{OtherWriters: true}, porcupine.Ok)

	// Revisions must still not go backwards.
	r.Get(1, "b", d(80), d(90), GetResult{Value: "y", Exists: true, ModRev: 5, Rev: 8}, nil)
	wantOutcome(t, r, Options{OtherWriters: true}, porcupine.Illegal)

	// An unknown write in a gap may take any revision of it.
	r = NewRecorder()
	r.Put(0, "a", "x", d(0), d(10), 0, errLost)
	r.Put(0, "b", "y", d(20), d(30), 5, nil)
	r.Put(0, "c", "z", d(20), d(30), 6, nil)
	r.Get(1, "a", d(40), d(50), GetResult{Value: "x", Exists: true, ModRev: 3, Rev: 6}, nil)
	wantOutcome(t, r, Options{OtherWriters: true}, porcupine.Ok)
}

func TestInitialRevision(t *testing.T) {
	r := NewRecorder()
	r.Put(0, "a", "x", d(0), d(10), 101, nil)
	wantOutcome(t, r, Options{InitialRevision: 100}, porcupine.Ok)
	wantOutcome(t, r, Options{}, porcupine.Illegal)
}

func TestInvalidHistory(t *testing.T) {
	bad := [][]porcupine.Operation{
		{{Input: "get", Output: Response{Rev: 1}}},
		{{Input: Request{Kind: OpPut, Key: "a"}, Output: Response{}}},                // no revision
		{{Input: Request{Kind: OpPut, Key: "a"}, Output: Response{Rev: 2}, Call: 5}}, // returns before call
		{{Input: Request{Kind: 9, Key: "a"}, Output: Response{Rev: 2}}},
	}
	for i, ops := range bad {
		if _, err := Check(ops, time.Second); !errors.Is(err, ErrInvalidHistory) {
			t.Errorf("case %d: want ErrInvalidHistory, got %v", i, err)
		}
	}
	if res, err := Check(nil, time.Second); err != nil || !res.Ok() {
		t.Errorf("empty history: %v %v", res, err)
	}
}

func TestRecorderClassifiesErrors(t *testing.T) {
	r := NewRecorder()
	r.Put(0, "a", "x", d(0), d(1), 0, status.Error(codes.InvalidArgument, "too large"))
	r.Put(0, "a", "x", d(0), d(1), 0, status.Error(codes.Unavailable, "no leader"))
	r.Put(0, "a", "x", d(0), d(1), 0, errors.Join(errLost, ErrNotApplied))
	r.Delete(0, "a", d(2), d(7), 0, 0, context.Canceled)
	r.Get(0, "a", d(3), d(4), GetResult{}, context.DeadlineExceeded)
	s := r.Stats()
	want := Stats{Operations: 2, Unknown: 2, DroppedReads: 1, DroppedWrites: 2}
	if s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	for _, op := range r.Operations() {
		if op.Return != 8 {
			t.Errorf("unknown outcome returns at %d, want the end of the history (8)", op.Return)
		}
	}
	r = NewRecorder(WithDefiniteFailure(func(error) bool { return true }))
	r.Put(0, "a", "x", d(0), d(1), 0, errLost)
	if s := r.Stats(); s.DroppedWrites != 1 {
		t.Fatalf("custom classifier ignored: %+v", s)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder()
	done := make(chan struct{})
	for c := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				r.Get(c, "a", d(i), d(i), GetResult{Rev: 1}, nil)
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(r.Operations()); n != 800 {
		t.Fatalf("%d operations, want 800", n)
	}
	wantOutcome(t, r, Options{}, porcupine.Ok)
}

func TestDescribe(t *testing.T) {
	got := DescribeOperation(Request{Kind: OpCAS, Key: "a", Value: "v", Expect: ""}, Response{Succeeded: true, Rev: 3})
	if got != `cas("a", if absent then "v") -> succeeded, rev 3` {
		t.Errorf("got %s", got)
	}
	got = DescribeOperation(Request{Kind: OpGet, Key: "a"}, Response{Value: "v", Exists: true, ModRev: 2, Rev: 3})
	if got != `get("a") -> "v" mod 2, rev 3` {
		t.Errorf("got %s", got)
	}
	r := NewRecorder()
	r.Put(0, "a", "x", d(0), d(10), 0, errLost)
	r.Get(1, "a", d(20), d(30), GetResult{Value: "y", Exists: true, ModRev: 2, Rev: 2}, nil)
	res := check(t, r, Options{})
	html, err := os.ReadFile(res.VisualizationPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "unknown outcome") {
		t.Error("visualization lacks the operation descriptions")
	}
}
