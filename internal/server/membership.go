package server

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Member is one member of the cluster as recorded in the replicated state.
type Member struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// MemberID derives a member's ID from its peer URLs and the cluster token,
// so every member computes the same IDs from the same --initial-cluster.
func MemberID(peerURLs []string, token string) uint64 {
	urls := slices.Clone(peerURLs)
	sort.Strings(urls)
	h := sha1.Sum([]byte(strings.Join(urls, "") + "\x00" + token))
	return binary.BigEndian.Uint64(h[:8])
}

// ClusterID derives the cluster ID from the initial member IDs and token.
func ClusterID(memberIDs []uint64, token string) uint64 {
	ids := slices.Clone(memberIDs)
	slices.Sort(ids)
	b := make([]byte, 8*len(ids), 8*len(ids)+len(token))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	b = append(b, token...)
	h := sha1.Sum(b)
	return binary.BigEndian.Uint64(h[:8])
}

// membership is the replicated member table. Only the applier mutates it;
// readers take a copy through Server.Members.
type membership struct {
	members map[uint64]*Member
	removed map[uint64]bool // IDs of removed members: never used again
}

func newMembership() *membership {
	return &membership{members: make(map[uint64]*Member), removed: make(map[uint64]bool)}
}

func (m *membership) add(mem *Member) { m.members[mem.ID] = mem }

func (m *membership) remove(id uint64) {
	delete(m.members, id)
	m.removed[id] = true
}

func (m *membership) setClientURLs(id uint64, name string, urls []string) {
	if mem, ok := m.members[id]; ok {
		c := *mem
		c.ClientURLs = slices.Clone(urls)
		if name != "" {
			c.Name = name
		}
		m.members[id] = &c
	}
}

// list returns the members sorted by ID (a deterministic order).
func (m *membership) list() []Member {
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, *mem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// membershipJSON is the encoded member table. Older snapshots hold a bare
// array of members (no removed IDs); unmarshalMembership reads both.
type membershipJSON struct {
	Members []Member `json:"members"`
	Removed []uint64 `json:"removed,omitempty"`
}

func (m *membership) marshal() []byte {
	out := membershipJSON{Members: m.list()}
	for id := range m.removed {
		out.Removed = append(out.Removed, id)
	}
	slices.Sort(out.Removed)
	b, err := json.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("marshal membership: %v", err))
	}
	return b
}

func unmarshalMembership(b []byte) (*membership, error) {
	var in membershipJSON
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &in.Members); err != nil {
			return nil, fmt.Errorf("decode membership: %w", err)
		}
	} else if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("decode membership: %w", err)
	}
	m := newMembership()
	for i := range in.Members {
		mem := in.Members[i]
		m.members[mem.ID] = &mem
	}
	for _, id := range in.Removed {
		m.removed[id] = true
	}
	return m, nil
}
