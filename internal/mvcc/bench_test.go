package mvcc

import (
	"fmt"
	"runtime"
	"testing"
)

func BenchmarkTxnPut(b *testing.B) {
	s := New()
	keys := make([][]byte, 100000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("/registry/pods/default/pod-%08d", i))
	}
	val := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_, _, err := s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: keys[i%len(keys)], Value: val}}}}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchStore(n int) *Store {
	s := New()
	for i := range n {
		_, _, _ = s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: []byte(fmt.Sprintf("k%08d", i)), Value: []byte("value")}}}}, nil)
	}
	return s
}

func BenchmarkRangeSingle(b *testing.B) {
	s := benchStore(100000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Range(&RangeRequest{Key: []byte(fmt.Sprintf("k%08d", i%100000))}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRangeLimit100(b *testing.B) {
	s := benchStore(100000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := i % 99000 // a window of 1000 keys: Count visits the whole window, like etcd
		r, err := s.Range(&RangeRequest{Key: []byte(fmt.Sprintf("k%08d", start)), End: []byte(fmt.Sprintf("k%08d", start+1000)), Limit: 100})
		if err != nil || len(r.KVs) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad1M loads 1,000,000 keys and reports the heap they take (run with -benchtime=1x).
func BenchmarkLoad1M(b *testing.B) {
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := New()
		val := make([]byte, 100)
		for i := range 1000000 {
			_, _, _ = s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: []byte(fmt.Sprintf("/registry/pods/ns/pod-%08d", i)), Value: val}}}}, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB")
		if s.KeyCount() != 1000000 {
			b.Fatal("key count")
		}
		runtime.KeepAlive(s)
	}
}
