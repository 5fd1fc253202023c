package daemon

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/server"
)

// A joining member finds itself even when the first members it asks have
// not applied its addition yet: it asks every member, and asks again until
// one lists it. With nobody listing it, it gives up with the operator's
// hint once the wait is over.
func TestFindSelfWaitsForAMemberThatListsIt(t *testing.T) {
	initial := map[string][]url.URL{"a": urls(t, "http://a:2380"), "b": urls(t, "http://b:2380"), "c": urls(t, "http://c:2380"), "new": urls(t, "http://new:2380")}
	self := []string{"http://new:2380"}
	old := []server.Member{{ID: 1, Name: "a", PeerURLs: []string{"http://a:2380"}}, {ID: 2, Name: "b", PeerURLs: []string{"http://b:2380"}}}
	withNew := append(append([]server.Member{}, old...), server.Member{ID: 9, PeerURLs: []string{"http://new:2380"}})

	// Only c has applied the addition, after its third answer; a is down.
	asked := map[string]int{}
	fetch := func(peer string) (clusterInfo, error) {
		asked[peer]++
		switch {
		case peer == "http://a:2380":
			return clusterInfo{}, errors.New("connection refused")
		case peer == "http://c:2380" && asked[peer] >= 3:
			return clusterInfo{ClusterID: 7, Members: withNew}, nil
		}
		return clusterInfo{ClusterID: 7, Members: old}, nil
	}
	id, members, err := findSelf("new", initial, self, "tok", fetch, time.Minute, time.Millisecond)
	if err != nil || id.MemberID != 9 || id.ClusterID != 7 || id.Name != "new" || id.Token != "tok" || len(members) != 3 {
		t.Fatalf("findSelf: %+v %v %v", id, members, err)
	}
	if asked["http://new:2380"] != 0 {
		t.Fatal("asked itself")
	}

	// Nobody ever lists it: the operator is told to add it first.
	never := func(string) (clusterInfo, error) { return clusterInfo{ClusterID: 7, Members: old}, nil }
	if _, _, err := findSelf("new", initial, self, "tok", never, 20*time.Millisecond, time.Millisecond); err == nil || !strings.Contains(err.Error(), "add it first") {
		t.Fatalf("never listed: %v", err)
	}
	// Nobody answers: the last error is reported.
	down := func(string) (clusterInfo, error) { return clusterInfo{}, errors.New("connection refused") }
	if _, _, err := findSelf("new", initial, self, "tok", down, 20*time.Millisecond, time.Millisecond); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("nobody answers: %v", err)
	}
}
