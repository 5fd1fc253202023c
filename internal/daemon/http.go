package daemon

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/server"
)

// httpMux serves the operational endpoints on the client port:
//
//	/metrics  Prometheus metrics
//	/health   200 {"health":"true"} when a linearizable read succeeds (etcd's shape)
//	/readyz   200 when the member knows a leader and can serve reads
//	/livez    200 while the process serves HTTP
func (d *Daemon) httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		ok, reason := d.healthy(r.Context())
		writeHealth(w, ok, reason)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, reason := d.healthy(r.Context())
		writeHealth(w, ok, reason)
	})
	if d.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if d.faults != nil {
		mux.Handle("/debug/failpoints", d.faults.handler())
		mux.Handle("/debug/failpoints/", d.faults.handler())
	}
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, true, "")
	})
	return mux
}

func (d *Daemon) healthy(ctx context.Context) (bool, string) {
	if d.srv.Leader() == 0 {
		return false, "RAFT NO LEADER"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, _, err := d.srv.Range(ctx, &mvcc.RangeRequest{Key: []byte("health"), CountOnly: true}, false); err != nil {
		if err == server.ErrStopped {
			return false, "STOPPED"
		}
		return false, "QGET ERROR: " + err.Error()
	}
	return true, ""
}

func writeHealth(w http.ResponseWriter, ok bool, reason string) {
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	h := "false"
	if ok {
		h = "true"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"health": h, "reason": reason})
}
