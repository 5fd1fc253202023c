package command

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/cairn-db/cairn/internal/mvcc"
)

type gen struct{ r *rand.Rand }

func (g gen) bytes() []byte {
	switch g.r.Intn(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	default:
		b := make([]byte, g.r.Intn(20))
		g.r.Read(b)
		return b
	}
}

func (g gen) i64() int64 {
	switch g.r.Intn(4) {
	case 0:
		return 0
	case 1:
		return g.r.Int63n(100) - 50
	case 2:
		return g.r.Int63()
	default:
		return -g.r.Int63()
	}
}

func (g gen) txn(depth int) *mvcc.TxnRequest {
	t := &mvcc.TxnRequest{}
	if g.r.Intn(3) > 0 {
		t.Compare = make([]mvcc.Compare, g.r.Intn(3))
		for i := range t.Compare {
			t.Compare[i] = mvcc.Compare{
				Target: mvcc.CompareTarget(g.r.Intn(6)), Result: mvcc.CompareResult(g.r.Intn(5)),
				Key: g.bytes(), End: g.bytes(), Value: g.bytes(),
				Version: g.i64(), CreateRevision: g.i64(), ModRevision: g.i64(), Lease: g.i64(),
			}
		}
	}
	t.Success = g.ops(depth)
	t.Failure = g.ops(depth)
	return t
}

func (g gen) ops(depth int) []mvcc.Op {
	if g.r.Intn(4) == 0 {
		return nil
	}
	ops := make([]mvcc.Op, g.r.Intn(4))
	for i := range ops {
		op := &ops[i]
		k := g.r.Intn(12)
		if k&1 != 0 || k == 8 {
			op.Range = &mvcc.RangeRequest{
				Key: g.bytes(), End: g.bytes(), Limit: g.i64(), Revision: g.i64(),
				SortOrder: mvcc.SortOrder(g.r.Intn(3)), SortTarget: mvcc.SortTarget(g.r.Intn(5)),
				KeysOnly: g.r.Intn(2) == 0, CountOnly: g.r.Intn(2) == 0,
			}
			if g.r.Intn(2) == 0 {
				op.Range.MinModRevision, op.Range.MaxModRevision = g.i64(), g.i64()
				op.Range.MinCreateRevision, op.Range.MaxCreateRevision = g.i64(), g.i64()
			}
		}
		if k&2 != 0 {
			op.Put = &mvcc.PutRequest{Key: g.bytes(), Value: g.bytes(), Lease: g.i64(),
				PrevKV: g.r.Intn(2) == 0, IgnoreValue: g.r.Intn(2) == 0, IgnoreLease: g.r.Intn(2) == 0}
		}
		if k&4 != 0 {
			op.Delete = &mvcc.DeleteRequest{Key: g.bytes(), End: g.bytes(), PrevKV: g.r.Intn(2) == 0}
		}
		if k >= 9 && depth < 3 {
			op.Txn = g.txn(depth + 1)
		}
	}
	return ops
}

func (g gen) command() *Command {
	c := &Command{ID: g.r.Uint64() >> uint(g.r.Intn(64))}
	if g.r.Intn(5) == 0 {
		c.Kind, c.CompactRev = KindCompact, g.i64()
		return c
	}
	c.Kind = KindTxn
	if g.r.Intn(20) != 0 {
		c.Txn = g.txn(0)
	}
	return c
}

func seed(t *testing.T) int64 {
	if s := os.Getenv("CMD_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return 42
}

func TestRoundTripRandom(t *testing.T) {
	s := seed(t)
	t.Logf("seed %d (rerun with CMD_SEED=%d)", s, s)
	g := gen{rand.New(rand.NewSource(s))}
	for i := range 3000 {
		c := g.command()
		enc := Encode(c)
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(c, got) {
			t.Fatalf("case %d: round trip differs:\n%#v\n%#v", i, c, got)
		}
		if !bytes.Equal(AppendEncode([]byte("prefix"), c)[6:], enc) {
			t.Fatalf("case %d: AppendEncode differs", i)
		}
		// Every strict prefix is truncated, never a panic or a success.
		for n := range len(enc) {
			if i%4 != 0 {
				break
			}
			if _, err := Decode(enc[:n]); err == nil {
				t.Fatalf("case %d: prefix %d/%d decoded", i, n, len(enc))
			}
		}
		if _, err := Decode(append(enc, 0)); !errors.Is(err, ErrTrailingBytes) {
			t.Fatalf("case %d: trailing byte: %v", i, err)
		}
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	c := &Command{ID: 7, Kind: KindTxn, Txn: &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("k"), Value: []byte("v")}}}}}
	enc := Encode(c)
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0xff
	}
	if p := got.Txn.Success[0].Put; string(p.Key) != "k" || string(p.Value) != "v" {
		t.Fatal("decoded command aliases its input")
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(&Command{ID: 1, Kind: KindCompact, CompactRev: 5})
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"version only", []byte{Version}, ErrTruncated},
		{"unknown version", append([]byte{2}, good[1:]...), ErrUnknownVersion},
		{"unknown kind", []byte{Version, 99, 1}, ErrUnknownKind},
		{"kind zero", []byte{Version, 0, 1}, ErrUnknownKind},
		{"truncated id", []byte{Version, byte(KindCompact), 0x80}, ErrTruncated},
		{"trailing", append(append([]byte(nil), good...), 1), ErrTrailingBytes},
		{"bad txn presence", []byte{Version, byte(KindTxn), 1, 2}, ErrMalformed},
		{"non-minimal varint", []byte{Version, byte(KindCompact), 0x81, 0x00, 2}, ErrMalformed},
		{"unknown op flag", []byte{Version, byte(KindTxn), 1, 1, 0, 2, 0x10, 0}, ErrMalformed},
		{"huge list", []byte{Version, byte(KindTxn), 1, 1, 0xff, 0xff, 0xff, 0x7f}, ErrTruncated},
	} {
		_, err := Decode(tc.b)
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if c, err := Decode(good); err != nil || c.CompactRev != 5 || c.ID != 1 || c.Kind != KindCompact {
		t.Fatalf("good compact: %+v %v", c, err)
	}
}

func TestDeepNesting(t *testing.T) {
	t0 := &mvcc.TxnRequest{}
	for range maxDepth + 5 {
		t0 = &mvcc.TxnRequest{Success: []mvcc.Op{{Txn: t0}}}
	}
	if _, err := Decode(Encode(&Command{Kind: KindTxn, Txn: t0})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("deep nesting: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	g := gen{rand.New(rand.NewSource(1))}
	for range 30 {
		f.Add(Encode(g.command()))
	}
	f.Add([]byte{})
	f.Add([]byte{Version, byte(KindTxn), 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		enc := Encode(c)
		if !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(b)) != b:\n%x\n%x", b, enc)
		}
		c2, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("decode(encode(x)) != x: %v", err)
		}
	})
}

var benchPut = &Command{ID: 123456789, Kind: KindTxn, Txn: &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{
	Key: []byte("/registry/pods/default/pod-00001234"), Value: bytes.Repeat([]byte("v"), 256), PrevKV: true}}}}}

func BenchmarkEncodePut(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for range b.N {
		buf = AppendEncode(buf[:0], benchPut)
	}
}

func BenchmarkDecodePut(b *testing.B) {
	enc := Encode(benchPut)
	b.ReportAllocs()
	for range b.N {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
