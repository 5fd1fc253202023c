package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// joinIdentity finds this member in the running cluster.
func (d *Daemon) joinIdentity() (identity, []server.Member, error) {
	cfg := d.cfg
	self := urlStrings(cfg.InitialAdvertisePeerURLs)
	var lastErr error
	for name, urls := range cfg.InitialCluster {
		if name == cfg.Name {
			continue
		}
		for _, u := range urlStrings(urls) {
			info, err := fetchClusterInfo(u)
			if err != nil {
				lastErr = err
				continue
			}
			for _, m := range info.Members {
				peers := slices.Clone(m.PeerURLs)
				slices.Sort(peers)
				if slices.Equal(peers, self) {
					return identity{Version: 1, Name: cfg.Name, MemberID: m.ID, ClusterID: info.ClusterID, Token: cfg.InitialClusterToken}, info.Members, nil
				}
			}
			return identity{}, nil, fmt.Errorf("--initial-cluster-state existing: no member of cluster %x has the peer URLs %v (--initial-advertise-peer-urls): add it first (cairn member add / etcdctl member add)", info.ClusterID, self)
		}
	}
	return identity{}, nil, fmt.Errorf("--initial-cluster-state existing: no other member listed in --initial-cluster answered on its peer URL: %v", lastErr)
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
