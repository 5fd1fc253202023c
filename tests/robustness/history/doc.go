// Package history records what clients of a Cairn (etcd v3 KV) cluster saw
// and checks that it is linearizable, with porcupine.
//
// # What it owns
//
// A Recorder, shared by the client goroutines of a robustness test, and the
// sequential specification of the register workload: single-key get, put,
// delete and a compare-and-swap transaction
// ("if value(key) == expect then put(key, value)", expect "" meaning
// "if the key is absent", i.e. create_revision == 0).
//
// # Entry points
//
//	rec := history.NewRecorder()               // or NewRecorder(WithDefiniteFailure(fn))
//	start := time.Now()
//	call := time.Since(start); resp, err := cli.Put(ctx, k, v); ret := time.Since(start)
//	rec.Put(clientID, k, v, call, ret, resp.Header.Revision /* 0 on error */, err)
//	...
//	res, err := history.Check(rec.Operations(), time.Minute)
//	// or history.CheckWithOptions(ops, history.Options{...})
//	if !res.Ok() { t.Fatalf("%v", res) } // res.VisualizationPath: HTML to open in a browser
//
// Client ids are small integers from 0. Timestamps come from one monotonic
// clock. Operations returns porcupine.Operations whose Input is a Request
// and Output a Response.
//
// # The model
//
// The state is every recorded key's value and mod revision plus the store's
// one global revision (all keys share it, as in etcd; an empty store is at
// revision 1, Options.InitialRevision changes that). A put advances the
// revision and returns it; a delete advances it only if the key existed
// (deleted 1, else 0); a CAS behaves as a put when its comparison holds
// (succeeded) and otherwise changes nothing; every response carries the
// revision after the operation, and a get must return the value, existence
// and mod revision of the key, and the current revision.
//
// # Errors and unknown outcomes
//
// A failed read is dropped (it had no effect). A write that failed with an
// error that proves it was never applied (DefinitelyNotApplied: the gRPC
// codes InvalidArgument, PermissionDenied, Unauthenticated, or an error
// wrapping ErrNotApplied) is dropped too. Any other failed write has an
// unknown outcome: it is recorded with Return at the end of the history and
// may have taken effect once, at any moment after its call, or never.
//
// Check implements that with porcupine.NondeterministicModel. An
// unknown-outcome write is linearized as a point at its call, where it joins
// a multiset of pending writes in the state; before each later operation
// any pending writes may take effect (exactly as many as the gap between
// the state's revision and the revision that operation reports, since every
// write advances the revision). This is equivalent to "effect anywhere
// after the call, or never" and avoids porcupine's worst case, a long
// operation concurrent with everything. Before the search, Check also:
//   - resolves an unknown put or CAS whose (key, value) no other write
//     produces and that some read returned: it was applied, at the mod
//     revision the read saw, before that read returned;
//   - replaces values that no read returns and no CAS expects by one
//     placeholder, so states differing only in unobservable values merge.
//
// Workloads should therefore write unique values. The cost of the search
// grows with the number of unresolved unknown outcomes, because the checker
// must remember which of them may still take effect. Options.UnknownWindow
// bounds how long after its client's error such a write may still take
// effect (a synthetic operation closes the window); with a window of a few
// operations' length the checker is fast even with many unknown outcomes.
//
// Options.OtherWriters allows revision gaps caused by writes outside the
// history (for example another workload writing other keys of the same
// cluster): revisions must then be monotonic and consistent, not gap-free.
// It makes the search slower and a little less strict, so prefer recording
// every writer of the store, or running other workloads on other clusters.
//
// # Visualization
//
// When a history is Illegal, Check runs the search again in verbose mode and
// writes porcupine's HTML visualization (Options.VisualizationDir, default a
// new directory under os.TempDir) and returns its path in
// Result.VisualizationPath. Operations are described by DescribeOperation,
// states as "rev=7 {a="x"@5, b=absent} maybe-later[put(a,?)]"; "?" is a
// value that nothing observes.
//
// # Testing
//
//	go test -race ./tests/robustness/history/
//	HISTORY_SEED=42 go test -run Randomized -v ./tests/robustness/history/
//	go test -run X -bench Check2000 ./tests/robustness/history/
//	go test -run X -fuzz FuzzMatchesReference -fuzztime=20s ./tests/robustness/history/
//
// The tests cover hand-written legal and illegal histories, a brute-force
// reference checker compared on thousands of small random histories
// (TestMatchesReference, FuzzMatchesReference), and seeded simulations of a
// linearizable store with 1000-2000 operations, unknown outcomes and
// clients that give up before their write lands, plus the same history with
// one read made stale, which must be Illegal.
package history
