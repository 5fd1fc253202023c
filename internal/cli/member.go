package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func memberListVerb() *verb {
	return &verb{
		name:    "member list",
		args:    "",
		summary: "list the cluster members",
		help: `Lists the members of the cluster (linearizable unless --serializable).
A member that was added but has not started yet has no name and is shown as
unstarted.

Output: table prints ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS and IS
LEARNER; -o json prints one object with a members array; -o value prints
each row's fields separated by tabs.`,
		register: func(fs *flag.FlagSet) any {
			serializable := new(bool)
			fs.BoolVar(serializable, "serializable", false, "answer from the member's local state (may be stale)")
			return serializable
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			if len(args) > 0 {
				return usagef("member list takes no arguments")
			}
			var mopts []clientv3.OpOption
			if *opts.(*bool) {
				mopts = append(mopts, clientv3.WithSerializable())
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.MemberList(rctx, mopts...)
				if err != nil {
					return err
				}
				return inv.printer().members(resp)
			})
		},
	}
}

type (
	jsonMember struct {
		ID         uint64   `json:"id"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peer_urls"`
		ClientURLs []string `json:"client_urls"`
		IsLearner  bool     `json:"is_learner"`
	}
	jsonMemberList struct {
		Header  *jsonHeader  `json:"header,omitempty"`
		Members []jsonMember `json:"members"`
	}
)

func (p printer) members(r *clientv3.MemberListResponse) error {
	if p.format == outputJSON {
		j := jsonMemberList{Header: toJSONHeader(r.Header), Members: []jsonMember{}}
		for _, m := range r.Members {
			j.Members = append(j.Members, jsonMember{ID: m.ID, Name: m.Name, PeerURLs: nonNil(m.PeerURLs), ClientURLs: nonNil(m.ClientURLs), IsLearner: m.IsLearner})
		}
		return p.json(j)
	}
	var table [][]string
	if p.format == outputTable {
		table = append(table, []string{"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"})
	}
	for _, m := range r.Members {
		st := "started"
		if m.Name == "" {
			st = "unstarted"
		}
		table = append(table, []string{fmt.Sprintf("%x", m.ID), st, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), fmt.Sprint(m.IsLearner)})
	}
	if p.format == outputValue {
		for _, row := range table {
			if err := p.lines(strings.Join(row, "\t")); err != nil {
				return err
			}
		}
		return nil
	}
	return p.table(table)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
