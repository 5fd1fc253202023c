// Package failpoint lets tests inject faults into a running member and run
// deliberately broken behaviours ("mutants") that the robustness suite must
// catch. Faults are named values in a Set:
//
//	peer-drop=ID,ID      drop every raft message to these members (hex IDs); set it on
//	                     both sides of a link to cut it both ways
//	peer-drop-rate=0.2   drop this fraction of all outgoing raft messages
//	peer-delay=50ms      deliver outgoing raft messages this much later
//	fsync-delay=200ms    every fsync takes this much longer
//	fsync-error=1        every fsync fails (the member must stop)
//	disk-full=1          every write fails with ENOSPC (the member must stop)
//	mutant-stale-read=1  serve linearizable reads locally, without ReadIndex
//	mutant-no-fsync=1    acknowledge writes without fsyncing the WAL
//	mutant-drop-watch-event=N  drop one event out of every N notified to watchers
//	mutant-corrupt=1     apply puts with another value than the log's, on this member only
//
// A Set is read once at start from CAIRN_FAILPOINTS ("name=value;name=value")
// and changed at run time through /debug/failpoints on the client URLs.
// Everything is compiled in only with `-tags failpoints`: in a normal build
// Enabled is the constant false, the daemon never creates a Set, and no
// endpoint exists.
package failpoint

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Set holds the active failpoints. The zero value is empty and usable.
type Set struct {
	mu       sync.RWMutex // protects vals and onChange
	vals     map[string]string
	onChange []func(name, value string)
}

// Parse builds a Set from "name=value;name=value" (a bare name means "1").
func Parse(s string) (*Set, error) {
	set := &Set{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			value = "1"
		}
		if !Known(name) {
			return nil, fmt.Errorf("failpoint: unknown failpoint %q", name)
		}
		set.Set(name, value)
	}
	return set, nil
}

var known = []string{"peer-drop", "peer-drop-rate", "peer-delay", "fsync-delay", "fsync-error", "disk-full", "mutant-stale-read", "mutant-no-fsync", "mutant-drop-watch-event", "mutant-corrupt"}

// Known reports whether name is a failpoint this build understands.
func Known(name string) bool {
	for _, k := range known {
		if k == name {
			return true
		}
	}
	return false
}

// Get returns the value of name and whether it is set.
func (s *Set) Get(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.vals[name]
	return v, ok
}

// On reports whether name is set to anything but "" or "0".
func (s *Set) On(name string) bool {
	v, ok := s.Get(name)
	return ok && v != "" && v != "0"
}

// Set sets name to value ("" clears it) and runs the change callbacks.
func (s *Set) Set(name, value string) {
	s.mu.Lock()
	if s.vals == nil {
		s.vals = map[string]string{}
	}
	if value == "" {
		delete(s.vals, name)
	} else {
		s.vals[name] = value
	}
	cbs := append([]func(string, string){}, s.onChange...)
	s.mu.Unlock()
	for _, cb := range cbs {
		cb(name, value)
	}
}

// OnChange registers a callback run after every Set.
func (s *Set) OnChange(cb func(name, value string)) {
	s.mu.Lock()
	s.onChange = append(s.onChange, cb)
	s.mu.Unlock()
}

// String lists the set failpoints, sorted.
func (s *Set) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var parts []string
	for k, v := range s.vals {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}
