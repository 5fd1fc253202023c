// Package command owns Cairn's replicated command format: the bytes a proposer puts into a raft entry and every
// member decodes and applies. It is ours (not etcd's protobuf), versioned and strict.
//
// # Entry points
//
// Encode / AppendEncode turn a Command into bytes; Decode turns them back. Decode runs on every member for every
// write, so it is a single pass over the input with one copy of the byte fields' storage; it never panics and
// rejects anything Encode would not have written.
//
// # Format, version 1
//
// Integers are encoding/binary varints (uvarint for unsigned, zig-zag varint for signed).
//
//	command  = version:byte(1) kind:byte id:uvarint body
//	body     = txnBody                  (kind 1, KindTxn)
//	         | compactRev:varint        (kind 2, KindCompact)
//	txnBody  = 0x00                     (Command.Txn nil)
//	         | 0x01 txn
//	txn      = list(compare) list(op) list(op)       compares, success ops, failure ops
//	list(x)  = 0:uvarint                             a nil list
//	         | (n+1):uvarint x*n                     a list of n (n may be 0: empty, not nil)
//	bytes    = 0:uvarint | (len+1):uvarint byte*len  nil and empty are kept apart
//	compare  = flags:byte target:varint result:varint key:bytes end:bytes value:bytes
//	           [version:varint] [create:varint] [mod:varint] [lease:varint]
//	           flags bit 0..3: version, create, mod, lease present (non-zero)
//	op       = flags:byte [range] [put] [delete] [txn]
//	           flags bit 0..3: Range, Put, Delete, Txn set (0: an empty op), in that order
//	range    = flags:byte key:bytes end:bytes [limit:varint] [revision:varint] [sortOrder:varint]
//	           [sortTarget:varint] [minMod maxMod minCreate maxCreate: varint*4]
//	           flags bit 0 KeysOnly, 1 CountOnly, 2..5 limit/revision/sortOrder/sortTarget present,
//	           6 revision filters present
//	put      = flags:byte key:bytes value:bytes [lease:varint]
//	           flags bit 0 PrevKV, 1 IgnoreValue, 2 IgnoreLease, 3 lease present
//	delete   = flags:byte key:bytes end:bytes          flags bit 0 PrevKV
//
// Unknown flag bits, a present field holding zero, an unknown version or kind, truncation, trailing bytes and
// txns nested deeper than 1024 are errors, so every accepted input has exactly one encoding:
// Encode(Decode(b)) == b. New kinds take new kind numbers; a change to an existing body needs a new version.
//
// # Testing
//
//	go test -race ./internal/command/
//
// Seeded random round trips (CMD_SEED=<seed> to rerun one), FuzzDecode (its seed corpus runs as a test) and
// benchmarks of a put's Encode and Decode.
package command
