package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/cairn-db/cairn/internal/server"
)

// Joining a running cluster (--initial-cluster-state existing): the member
// was added first (member add); it asks the other members listed in
// --initial-cluster, on their peer URLs, for the cluster ID and the member
// table, finds itself in it by its peer URLs, and starts with an empty log
// that the leader fills in.

// pathMembers is the peer-port endpoint a joining member reads.
const pathMembers = "/cairn/members"

// clusterInfo is what pathMembers answers.
type clusterInfo struct {
	ClusterID uint64          `json:"cluster_id"`
	Members   []server.Member `json:"members"`
}

// peerHandler serves the transport and pathMembers on the peer listeners.
func (d *Daemon) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", d.tr.Handler())
	mux.HandleFunc("GET "+pathMembers, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(clusterInfo{ClusterID: d.srv.ClusterID(), Members: d.srv.Members()})
	})
	return mux
}

// joinWait bounds how long a joining member waits for a member that lists
// it. "member add" returns once the leader has applied the addition; a
// follower applies it a heartbeat or so later, and until then answers
// without the new member.
const (
	joinWait     = 10 * time.Second
	joinInterval = 200 * time.Millisecond
)

// joinIdentity finds this member in the running cluster.
func (d *Daemon) joinIdentity() (identity, []server.Member, error) {
	cfg := d.cfg
	return findSelf(cfg.Name, cfg.InitialCluster, urlStrings(cfg.InitialAdvertisePeerURLs), cfg.InitialClusterToken,
		fetchClusterInfo, joinWait, joinInterval)
}

// findSelf asks every other member of initial for the member table, on its
// peer URLs, until one lists a member with exactly the peer URLs self
// (sorted). When the members that answer do not list it yet, it asks again
// every interval, for at most wait.
func findSelf(name string, initial map[string][]url.URL, self []string, token string,
	fetch func(peerURL string) (clusterInfo, error), wait, interval time.Duration) (identity, []server.Member, error) {
	deadline := time.Now().Add(wait)
	for {
		var lastErr error
		answered := false
		var clusterID uint64
		for other, urls := range initial {
			if other == name {
				continue
			}
			for _, u := range urlStrings(urls) {
				info, err := fetch(u)
				if err != nil {
					lastErr = err
					continue
				}
				answered, clusterID = true, info.ClusterID
				for _, m := range info.Members {
					peers := slices.Clone(m.PeerURLs)
					slices.Sort(peers)
					if slices.Equal(peers, self) {
						return identity{Version: 1, Name: name, MemberID: m.ID, ClusterID: info.ClusterID, Token: token}, info.Members, nil
					}
				}
				break // this member answered: its other URLs would answer the same
			}
		}
		if time.Now().Add(interval).After(deadline) {
			if answered {
				return identity{}, nil, fmt.Errorf("--initial-cluster-state existing: no member of cluster %x has the peer URLs %v (--initial-advertise-peer-urls): add it first (cairn member add / etcdctl member add)", clusterID, self)
			}
			return identity{}, nil, fmt.Errorf("--initial-cluster-state existing: no other member listed in --initial-cluster answered on its peer URL: %v", lastErr)
		}
		time.Sleep(interval)
	}
}

func fetchClusterInfo(peerURL string) (clusterInfo, error) {
	var info clusterInfo
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peerURL+pathMembers, nil)
	if err != nil {
		return info, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("%s%s: %s", peerURL, pathMembers, resp.Status)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}
