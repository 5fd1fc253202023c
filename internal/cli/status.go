package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// statusRow is the status of one endpoint, or why it could not be read.
type statusRow struct {
	endpoint string
	resp     *clientv3.StatusResponse
	err      error
}

func statusVerb() *verb {
	return &verb{
		name:    "status",
		args:    "",
		summary: "show the status of each endpoint",
		help: `Asks every endpoint for its status (Maintenance.Status): member ID, version,
database size, leader, raft term, raft index, applied index and revision.
Alias: 'cairn endpoint status'. Exits 1 when any endpoint fails.

Output: table prints one row per endpoint; -o json prints one object per
endpoint; -o value prints each row's fields separated by tabs.`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			if len(args) > 0 {
				return usagef("status takes no arguments")
			}
			resps, errs, err := perEndpoint(ctx, inv, func(ctx context.Context, cli *clientv3.Client, ep string) (*clientv3.StatusResponse, error) {
				rctx, cancel := inv.requestContext(ctx)
				defer cancel()
				return cli.Status(rctx, ep)
			})
			if err != nil {
				return err
			}
			eps, _ := inv.g.endpointList()
			rows := make([]statusRow, len(eps))
			for i, ep := range eps {
				rows[i] = statusRow{endpoint: ep, resp: resps[i], err: errs[i]}
			}
			if err := inv.printer().status(rows); err != nil {
				return err
			}
			return countFailed(errs)
		},
	}
}

type jsonStatus struct {
	Endpoint         string      `json:"endpoint"`
	Header           *jsonHeader `json:"header,omitempty"`
	Version          string      `json:"version,omitempty"`
	DBSize           int64       `json:"db_size"`
	DBSizeInUse      int64       `json:"db_size_in_use"`
	Leader           uint64      `json:"leader"`
	RaftIndex        uint64      `json:"raft_index"`
	RaftTerm         uint64      `json:"raft_term"`
	RaftAppliedIndex uint64      `json:"raft_applied_index"`
	IsLearner        bool        `json:"is_learner"`
	Errors           []string    `json:"errors,omitempty"`
	Error            string      `json:"error,omitempty"`
}

func (p printer) status(rows []statusRow) error {
	switch p.format {
	case outputJSON:
		for _, r := range rows {
			j := jsonStatus{Endpoint: r.endpoint, Error: errorText(r.err)}
			if s := r.resp; s != nil {
				j.Header, j.Version, j.DBSize, j.DBSizeInUse = toJSONHeader(s.Header), s.Version, s.DbSize, s.DbSizeInUse
				j.Leader, j.RaftIndex, j.RaftTerm, j.RaftAppliedIndex = s.Leader, s.RaftIndex, s.RaftTerm, s.RaftAppliedIndex
				j.IsLearner, j.Errors = s.IsLearner, s.Errors
			}
			if err := p.json(j); err != nil {
				return err
			}
		}
		return nil
	case outputValue:
		for _, r := range rows {
			if err := p.lines(strings.Join(statusCells(r), "\t")); err != nil {
				return err
			}
		}
		return nil
	default:
		table := [][]string{{"ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "LEADER", "RAFT TERM", "RAFT INDEX", "APPLIED INDEX", "REVISION", "ERRORS"}}
		for _, r := range rows {
			table = append(table, statusCells(r))
		}
		return p.table(table)
	}
}

func statusCells(r statusRow) []string {
	s := r.resp
	if s == nil {
		return []string{r.endpoint, "-", "-", "-", "-", "-", "-", "-", "-", "-", errorText(r.err)}
	}
	var id uint64
	var rev int64
	if s.Header != nil {
		id, rev = s.Header.MemberId, s.Header.Revision
	}
	errs := strings.Join(s.Errors, ", ")
	if r.err != nil {
		errs = errorText(r.err)
	}
	return []string{
		r.endpoint, fmt.Sprintf("%x", id), s.Version, humanBytes(s.DbSize),
		fmt.Sprint(id != 0 && id == s.Leader), fmt.Sprintf("%x", s.Leader),
		fmt.Sprint(s.RaftTerm), fmt.Sprint(s.RaftIndex), fmt.Sprint(s.RaftAppliedIndex), fmt.Sprint(rev), errs,
	}
}

// humanBytes formats a size with SI units, like etcdctl: 25 kB, 1.2 MB.
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n) / 1000
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}
