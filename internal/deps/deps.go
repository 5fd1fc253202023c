//go:build tools

package deps

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/google/btree"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.etcd.io/etcd/api/v3/etcdserverpb"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/raft/v3"
	_ "google.golang.org/grpc"
	_ "gopkg.in/yaml.v3"
)
