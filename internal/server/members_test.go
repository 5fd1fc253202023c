package server

import (
	"context"
	"errors"
	"testing"
)

// Removing a voter is refused with etcd's "unhealthy cluster" when the
// voters left that the leader recently heard from would not be a quorum of
// the voters left; a learner can always go.
func TestMemberRemoveRefusedWithoutQuorum(t *testing.T) {
	ctx := context.Background()
	node := newFakeNode()
	s := newTestServer(t, node, nil)
	var ids []uint64
	for _, u := range []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:4"} {
		m, _, err := s.MemberAdd(ctx, []string{u}, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	learner, _, err := s.MemberAdd(ctx, []string{"http://127.0.0.1:3"}, true)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := ids[0], ids[1], ids[2]
	if n := len(s.Members()); n != 4 {
		t.Fatalf("%d members, want a, b, c and the learner", n)
	}
	setActive := func(on ...uint64) {
		node.mu.Lock()
		node.active = func(id uint64) bool {
			for _, x := range on {
				if x == id {
					return true
				}
			}
			return false
		}
		node.mu.Unlock()
	}
	// Voters a, b, c. Only c is active: removing a leaves {b, c} with one
	// active, not a quorum of two.
	setActive(c)
	if _, err := s.MemberRemove(ctx, a); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("remove with the rest inactive: %v, want %v", err, ErrUnhealthy)
	}
	if _, ok := s.member(a); !ok {
		t.Fatal("a refused removal removed the member")
	}
	// A learner does not count towards quorum: it can always be removed.
	if _, err := s.MemberRemove(ctx, learner.ID); err != nil {
		t.Fatalf("remove the learner: %v", err)
	}
	// With b active too, {b, c} are both active: a goes.
	setActive(b, c)
	if _, err := s.MemberRemove(ctx, a); err != nil {
		t.Fatalf("remove with a quorum left: %v", err)
	}
	if _, ok := s.member(a); ok {
		t.Fatal("member still listed after its removal")
	}
	if _, err := s.MemberRemove(ctx, a); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("second removal: %v", err)
	}
}
