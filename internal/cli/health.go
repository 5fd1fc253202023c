package cli

import (
	"context"
	"errors"
	"flag"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// healthRow is the health of one endpoint.
type healthRow struct {
	endpoint string
	healthy  bool
	took     time.Duration
	err      error
}

func healthVerb() *verb {
	return &verb{
		name:    "health",
		args:    "",
		summary: "check that each endpoint serves linearizable reads",
		help: `Checks every endpoint: an endpoint is healthy when a linearizable read (of
the key "health") succeeds, which needs a leader and a quorum.
Alias: 'cairn endpoint health'. Exits 1 when any endpoint is unhealthy.

Output: table prints ENDPOINT, HEALTH, TOOK and ERROR columns; -o json
prints one object per endpoint; -o value prints each row's fields separated
by tabs.`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			if len(args) > 0 {
				return usagef("health takes no arguments")
			}
			rows, errs, err := perEndpoint(ctx, inv, func(ctx context.Context, cli *clientv3.Client, ep string) (healthRow, error) {
				rctx, cancel := inv.requestContext(ctx)
				defer cancel()
				start := time.Now()
				_, err := cli.Get(rctx, "health")
				took := time.Since(start)
				if err == nil || errors.Is(err, rpctypes.ErrPermissionDenied) {
					return healthRow{endpoint: ep, healthy: true, took: took}, nil
				}
				return healthRow{endpoint: ep, took: took}, err
			})
			if err != nil {
				return err
			}
			eps, _ := inv.g.endpointList()
			for i := range rows {
				rows[i].endpoint, rows[i].err = eps[i], errs[i]
			}
			if err := inv.printer().health(rows); err != nil {
				return err
			}
			return countFailed(errs)
		},
	}
}

type jsonHealth struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

func (p printer) health(rows []healthRow) error {
	cells := func(r healthRow) []string {
		h := "unhealthy"
		if r.healthy {
			h = "healthy"
		}
		took := "-"
		if r.took > 0 {
			took = roundDuration(r.took).String()
		}
		return []string{r.endpoint, h, took, errorText(r.err)}
	}
	switch p.format {
	case outputJSON:
		for _, r := range rows {
			if err := p.json(jsonHealth{Endpoint: r.endpoint, Health: r.healthy, Took: roundDuration(r.took).String(), Error: errorText(r.err)}); err != nil {
				return err
			}
		}
		return nil
	case outputValue:
		for _, r := range rows {
			if err := p.lines(strings.Join(cells(r), "\t")); err != nil {
				return err
			}
		}
		return nil
	default:
		table := [][]string{{"ENDPOINT", "HEALTH", "TOOK", "ERROR"}}
		for _, r := range rows {
			table = append(table, cells(r))
		}
		return p.table(table)
	}
}

// roundDuration keeps three significant digits or so.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
