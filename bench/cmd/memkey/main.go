// Command memkey measures a single Cairn member's memory per key: it starts
// `cairn serve` (default flags, a temporary data dir, ports 29991/29992),
// writes -keys keys of 14 bytes with -value-size-byte values from 64
// concurrent clients, and reports the member's RSS (VmRSS) growth per key
// next to the quota's size estimate (mvcc.Store.Size: key + value + 160
// bytes per key written once).
//
//	go build -o /tmp/cairn ./cmd/cairn && go run ./bench/cmd/memkey -cairn /tmp/cairn
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

func main() {
	bin := flag.String("cairn", "", "the cairn binary")
	keys := flag.Int("keys", 200000, "keys to write")
	valueSize := flag.Int("value-size", 100, "value size in bytes")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-cairn is required")
	}
	dir, err := os.MkdirTemp("", "memkey-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(*bin, "serve", "--data-dir", dir,
		"--listen-client-urls", "http://127.0.0.1:29991", "--advertise-client-urls", "http://127.0.0.1:29991",
		"--listen-peer-urls", "http://127.0.0.1:29992", "--initial-advertise-peer-urls", "http://127.0.0.1:29992",
		"--initial-cluster", "default=http://127.0.0.1:29992", "--log-level", "warn")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer cmd.Process.Kill()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:29991"}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	for i := 0; ; i++ {
		if _, err := cli.Put(ctx, "warm", "x"); err == nil {
			break
		} else if i == 100 {
			log.Fatalf("the member did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	before := rss(cmd.Process.Pid)
	val := strings.Repeat("v", *valueSize)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < *keys; i += 64 {
				if _, err := cli.Put(ctx, fmt.Sprintf("key/%010d", i), val); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(2 * time.Second)
	after := rss(cmd.Process.Pid)
	est := 96 + 14 + 64 + *valueSize
	fmt.Printf("%d keys (14-byte keys, %d-byte values): RSS %d -> %d MiB, %.0f B/key; quota estimate %d B/key\n",
		*keys, *valueSize, before>>20, after>>20, float64(after-before)/float64(*keys), est)
}
