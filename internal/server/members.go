package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/url"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Membership changes, as etcd's Cluster service: add (voter or learner),
// remove, update, promote. Each is one raft configuration change, proposed
// and waited for like a command; this member runs one at a time, and raft
// refuses a second while one is pending. Member IDs are random and never
// reused (the table remembers removed IDs).

// Membership errors, with etcd's texts.
var (
	ErrMemberNotFound   = errors.New("etcdserver: member not found")
	ErrPeerURLExist     = errors.New("etcdserver: Peer URLs already exists")
	ErrMemberBadURLs    = errors.New("etcdserver: given member URLs are invalid")
	ErrMemberNotLearner = errors.New("etcdserver: can only promote a learner member")
	ErrLearnerNotReady  = errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	ErrTooManyLearners  = errors.New("etcdserver: too many learner members in cluster")
	ErrUnhealthy        = errors.New("etcdserver: unhealthy cluster")
	// ErrMemberRemoved is the fatal error of a member removed from the cluster.
	ErrMemberRemoved = errors.New("the member has been permanently removed from the cluster")
)

// maxLearners is etcd's default limit on learners.
const maxLearners = 1

// learnerReadyPercent: a learner may be promoted once its log matches at
// least this share of the leader's (etcd's 90%).
const learnerReadyPercent = 0.9

// MemberAdd adds a member with peerURLs (a learner when learner is set) and
// returns it and the new member list.
func (s *Server) MemberAdd(ctx context.Context, peerURLs []string, learner bool) (Member, []Member, error) {
	for _, u := range peerURLs {
		if pu, err := url.Parse(u); err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https") {
			return Member{}, nil, ErrMemberBadURLs
		}
	}
	if len(peerURLs) == 0 {
		return Member{}, nil, ErrMemberBadURLs
	}
	s.confMu.Lock()
	defer s.confMu.Unlock()
	members := s.Members()
	learners := 0
	for _, m := range members {
		if m.IsLearner {
			learners++
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(peerURLs, u) {
				return Member{}, nil, ErrPeerURLExist
			}
		}
	}
	if learner && learners >= maxLearners {
		return Member{}, nil, ErrTooManyLearners
	}
	m := Member{ID: s.newMemberID(), PeerURLs: slices.Clone(peerURLs), IsLearner: learner}
	typ := raftpb.ConfChangeAddNode
	if learner {
		typ = raftpb.ConfChangeAddLearnerNode
	}
	if err := s.proposeConfChange(ctx, typ, m); err != nil {
		return Member{}, nil, err
	}
	return m, s.Members(), nil
}

// MemberRemove removes member id. Only the leader decides (it alone knows
// which members are active): elsewhere it returns ErrNotLeader and the API
// forwards the call. Removing a voter is refused when the active voters
// left would not be a quorum of the voters left.
func (s *Server) MemberRemove(ctx context.Context, id uint64) ([]Member, error) {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	m, ok := s.member(id)
	if !ok {
		return nil, ErrMemberNotFound
	}
	if !s.node.IsLeader() {
		return nil, ErrNotLeader
	}
	if !m.IsLearner {
		voters, active := 0, 0
		for _, v := range s.Members() {
			if v.IsLearner || v.ID == id {
				continue
			}
			voters++
			if _, _, on, ok := s.node.Progress(v.ID); ok && on {
				active++
			}
		}
		if active < voters/2+1 {
			return nil, ErrUnhealthy
		}
	}
	if err := s.proposeConfChange(ctx, raftpb.ConfChangeRemoveNode, m); err != nil {
		return nil, err
	}
	return s.Members(), nil
}

// MemberUpdate changes member id's peer URLs.
func (s *Server) MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]Member, error) {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	m, ok := s.member(id)
	if !ok {
		return nil, ErrMemberNotFound
	}
	for _, o := range s.Members() {
		if o.ID == id {
			continue
		}
		for _, u := range o.PeerURLs {
			if slices.Contains(peerURLs, u) {
				return nil, ErrPeerURLExist
			}
		}
	}
	m.PeerURLs = slices.Clone(peerURLs)
	if err := s.proposeConfChange(ctx, raftpb.ConfChangeUpdateNode, m); err != nil {
		return nil, err
	}
	return s.Members(), nil
}

// MemberPromote makes learner id a voter, once its log has caught up with
// the leader's. Only the leader knows that: on another member it returns
// ErrNotLeader and the API forwards the call to the leader.
func (s *Server) MemberPromote(ctx context.Context, id uint64) ([]Member, error) {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	m, ok := s.member(id)
	if !ok {
		return nil, ErrMemberNotFound
	}
	if !m.IsLearner {
		return nil, ErrMemberNotLearner
	}
	if !s.node.IsLeader() {
		return nil, ErrNotLeader
	}
	match, commit, _, ok := s.node.Progress(id)
	if !ok || float64(match) < learnerReadyPercent*float64(commit) {
		return nil, ErrLearnerNotReady
	}
	m.IsLearner = false
	if err := s.proposeConfChange(ctx, raftpb.ConfChangeAddNode, m); err != nil {
		return nil, err
	}
	return s.Members(), nil
}

func (s *Server) member(id uint64) (Member, bool) {
	for _, m := range s.Members() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// newMemberID returns a random ID no member has or had.
func (s *Server) newMemberID() uint64 {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := binary.BigEndian.Uint64(b[:])
		s.mu.RLock()
		_, used := s.members.members[id]
		used = used || s.members.removed[id]
		s.mu.RUnlock()
		if id != 0 && !used {
			return id
		}
	}
}

// proposeConfChange proposes a change of member m and waits until this
// member applied it.
func (s *Server) proposeConfChange(ctx context.Context, typ raftpb.ConfChangeType, m Member) error {
	mctx, _ := json.Marshal(m)
	cc := &raftpb.ConfChange{Id: proto.Uint64(s.nextID()), Type: typ.Enum(), NodeId: proto.Uint64(m.ID), Context: mctx}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.waitLeader(ctx); err != nil {
		return err
	}
	ch := s.wait.Register(cc.GetId())
	if err := s.node.ProposeConfChange(ctx, cc); err != nil {
		s.wait.Cancel(cc.GetId())
		return s.contextError(ctx, err)
	}
	select {
	case r := <-ch:
		return r.err
	case <-ctx.Done():
		s.wait.Cancel(cc.GetId())
		return s.contextError(ctx, ctx.Err())
	case <-s.stopc:
		s.wait.Cancel(cc.GetId())
		return ErrStopped
	}
}
