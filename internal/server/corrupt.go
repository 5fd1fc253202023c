package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-db/cairn/internal/command"
)

// Corruption detection. Every member periodically (and at start-up)
// compares its HashKV with the other members' at its own current revision.
// Members that are behind (they answer "future revision") or compacted
// differently cannot be compared and are left out. If a strict majority of
// the cluster agrees on a hash that is not this member's, this member's
// state diverged: it raises a CORRUPT alarm, logs which revision and which
// hashes, and stops (Errors reports ErrCorrupt; the daemon exits). A member
// that finds another one in the minority logs it and lists a CORRUPT alarm
// for it; that member finds out on its own check and stops.

// ErrCorrupt is the fatal error of a member whose state diverged.
var ErrCorrupt = errors.New("server: this member's state differs from the majority's (CORRUPT)")

// PeerHash is another member's HashKV answer.
type PeerHash struct {
	Hash       uint32
	CompactRev int64
}

// HashPeer asks member m for its HashKV at rev; any error (m behind rev,
// unreachable) leaves m out of the comparison.
type HashPeer func(ctx context.Context, m Member, rev int64) (PeerHash, error)

// Alarm is a raised alarm: etcd's AlarmMember.
type Alarm struct {
	MemberID uint64 `json:"member_id"`
	Type     string `json:"type"` // "NOSPACE" (replicated) or "CORRUPT" (this member's finding)
}

// alarms is the member's list of alarms it raised (not replicated).
type alarms struct {
	mu   sync.Mutex
	list []Alarm
}

func (a *alarms) raise(al Alarm) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.list {
		if x == al {
			return
		}
	}
	a.list = append(a.list, al)
}

// Alarms lists the replicated alarms (NOSPACE) and the CORRUPT alarms this
// member raised.
func (s *Server) Alarms() []Alarm {
	s.mu.RLock()
	out := append([]Alarm(nil), s.repAlarms...)
	s.mu.RUnlock()
	s.alarms.mu.Lock()
	defer s.alarms.mu.Unlock()
	return append(out, s.alarms.list...)
}

// ClearLocalAlarm drops a CORRUPT alarm this member listed (alarm disarm).
func (s *Server) ClearLocalAlarm(memberID uint64, typ string) {
	s.alarms.mu.Lock()
	defer s.alarms.mu.Unlock()
	kept := s.alarms.list[:0]
	for _, a := range s.alarms.list {
		if a.Type != typ || (memberID != 0 && a.MemberID != memberID) {
			kept = append(kept, a)
		}
	}
	s.alarms.list = kept
}

// CheckCorruption compares this member's state with the others' (see
// above) and returns ErrCorrupt when this member is in the minority.
func (s *Server) CheckCorruption(ctx context.Context, peer HashPeer) error {
	s.mu.RLock()
	rev := s.store.Rev()
	own, _, ownCompact, err := s.store.HashKV(rev)
	members := s.members.list()
	s.mu.RUnlock()
	if err != nil {
		return nil // compacted past rev in between: try next time
	}
	type answer struct {
		id   uint64
		hash uint32
	}
	answers := []answer{{s.cfg.MemberID, own}}
	voters := 0
	for _, m := range members {
		if m.IsLearner {
			continue
		}
		voters++
		if m.ID == s.cfg.MemberID || len(m.ClientURLs) == 0 {
			continue
		}
		h, err := peer(ctx, m, rev)
		if err != nil || h.CompactRev != ownCompact {
			continue // behind, unreachable, or compacted differently: not comparable
		}
		answers = append(answers, answer{m.ID, h.Hash})
	}
	count := map[uint32]int{}
	for _, a := range answers {
		count[a.hash]++
	}
	for hash, n := range count {
		if 2*n <= voters {
			continue
		}
		// A majority agrees on hash; whoever differs diverged.
		for _, a := range answers {
			if a.hash == hash {
				continue
			}
			s.alarms.raise(Alarm{MemberID: a.id, Type: "CORRUPT"})
			if a.id == s.cfg.MemberID {
				s.log.Error("CORRUPT: this member's state differs from the majority's; stopping",
					"member", fmt.Sprintf("%x", a.id), "revision", rev, "hash", own, "majority_hash", hash,
					"agreeing_members", n, "voters", voters)
				return fmt.Errorf("%w at revision %d: hash %d, majority %d", ErrCorrupt, rev, own, hash)
			}
			s.log.Error("CORRUPT: another member's state differs from the majority's",
				"member", fmt.Sprintf("%x", a.id), "revision", rev, "hash", a.hash, "majority_hash", hash)
		}
	}
	return nil
}

// mutantCorrupt rewrites, on this member only, the value of the put txn it
// applies next (failpoint mutant-corrupt): a diverged replica, for the
// corruption check to find.
func (s *Server) mutantCorrupt(cmd *command.Command) {
	if s.cfg.MutantCorrupt == nil || !s.cfg.MutantCorrupt() || cmd.Kind != command.KindTxn || cmd.Txn == nil {
		return
	}
	for i := range cmd.Txn.Success {
		if p := cmd.Txn.Success[i].Put; p != nil {
			c := *p
			c.Value = append([]byte("corrupt:"), p.Value...)
			cmd.Txn.Success[i].Put = &c
		}
	}
}

// DefaultCorruptCheckInterval is how often members compare their state.
const DefaultCorruptCheckInterval = 5 * time.Minute

// corruptLoop runs the check shortly after start (once a leader is known
// and peers had time to publish their URLs) and then every interval; a
// member that finds itself corrupt stops (fail).
func (s *Server) corruptLoop() {
	defer s.wg.Done()
	first := time.NewTimer(min(s.cfg.CorruptCheckInterval, 5*time.Second))
	defer first.Stop()
	select {
	case <-first.C:
	case <-s.stopc:
		return
	}
	t := time.NewTicker(s.cfg.CorruptCheckInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.CheckCorruption(ctx, s.cfg.HashPeer)
		cancel()
		if errors.Is(err, ErrCorrupt) {
			s.fail(err)
			return
		}
		select {
		case <-t.C:
		case <-s.stopc:
			return
		}
	}
}
