package mvcc

// The validators are the stateless checks etcd's gRPC layer (v3rpc) runs before proposing a request. The API
// layer runs them; the store does not depend on them, but a txn that passes ValidateTxn never hits the store's
// in-txn existence check (see Store.Txn).

// ValidateRange checks a range request: a key, and a known sort order and target.
func ValidateRange(r *RangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	return checkSort(r)
}

// ValidatePut checks a put request: a key; no value with IgnoreValue; no lease with IgnoreLease.
func ValidatePut(p *PutRequest) error {
	if len(p.Key) == 0 {
		return ErrEmptyKey
	}
	if p.IgnoreValue && len(p.Value) != 0 {
		return ErrValueProvided
	}
	if p.IgnoreLease && p.Lease != 0 {
		return ErrLeaseProvided
	}
	return nil
}

// ValidateDelete checks a delete request: a key.
func ValidateDelete(d *DeleteRequest) error {
	if len(d.Key) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// ValidateTxn checks a txn like etcd's checkTxnRequest followed by checkIntervals on each branch:
//   - ErrTooManyOps when the largest of len(Compare), len(Success), len(Failure) exceeds maxTxnOps; a nested txn
//     gets the budget left by its parent (maxTxnOps minus that largest count);
//   - ErrEmptyKey for a compare or op without a key, ErrValueProvided/ErrLeaseProvided/ErrInvalidSortOption as
//     for single requests, ErrKeyNotFound for an op with nothing set (as etcd), ErrInvalidOp for an op with
//     more than one thing set;
//   - ErrDuplicateKey when a branch (with its nested txns) writes a key twice: two puts of one key, or a put
//     inside a delete's interval. A key put in both branches of a nested txn is fine.
//
// etcd quirks kept on purpose: a delete whose End is "\x00" (every key >= Key) or whose End sorts before its
// Key overlaps nothing; a nested txn's puts are checked against the deletes of the ops before it and of the
// enclosing branch, not against the deletes of nested txns that follow it.
func ValidateTxn(r *TxnRequest, maxTxnOps int) error {
	if err := checkTxnRequest(r, maxTxnOps); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.Success); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.Failure); err != nil {
		return err
	}
	return nil
}

func checkTxnRequest(r *TxnRequest, maxTxnOps int) error {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxTxnOps {
		return ErrTooManyOps
	}
	for i := range r.Compare {
		if len(r.Compare[i].Key) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]Op{r.Success, r.Failure} {
		for i := range ops {
			if err := checkOp(&ops[i], maxTxnOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkOp(op *Op, maxTxnOps int) error {
	switch n := opCount(op); {
	case n == 0:
		return ErrKeyNotFound
	case n > 1:
		return ErrInvalidOp
	}
	switch {
	case op.Range != nil:
		return ValidateRange(op.Range)
	case op.Put != nil:
		return ValidatePut(op.Put)
	case op.Delete != nil:
		return ValidateDelete(op.Delete)
	default:
		return checkTxnRequest(op.Txn, maxTxnOps)
	}
}

// interval is a half-open key interval [begin, end) as etcd's checkIntervals builds it ("" never occurs as end:
// a point delete of k is [k, k+"\x00")).
type interval struct{ begin, end string }

// contains reports whether the point k overlaps the interval under etcd's adt rules (which is plain
// begin <= k < end: an inverted interval, including [k, "\x00"), contains nothing).
func (iv interval) contains(k string) bool { return iv.begin <= k && k < iv.end }

func overlaps(dels []interval, k string) bool {
	for _, iv := range dels {
		if iv.contains(k) {
			return true
		}
	}
	return false
}

// checkIntervals returns the keys put and the intervals deleted by ops and their nested txns, or ErrDuplicateKey.
// puts is a set; order of iteration over it never changes the outcome.
func checkIntervals(ops []Op) (puts map[string]struct{}, dels []interval, err error) {
	for i := range ops {
		d := ops[i].Delete
		if d == nil || ops[i].Range != nil || ops[i].Put != nil || ops[i].Txn != nil {
			continue
		}
		if len(d.End) != 0 {
			dels = append(dels, interval{string(d.Key), string(d.End)})
		} else {
			dels = append(dels, interval{string(d.Key), string(d.Key) + "\x00"})
		}
	}

	puts = make(map[string]struct{})
	for i := range ops {
		t := ops[i].Txn
		if t == nil || ops[i].Range != nil || ops[i].Put != nil || ops[i].Delete != nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(t.Failure)
		if err != nil {
			return nil, dels, err
		}
		for k := range putsThen {
			if _, ok := puts[k]; ok {
				return nil, dels, ErrDuplicateKey
			}
			if overlaps(dels, k) {
				return nil, dels, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for k := range putsElse {
			if _, ok := puts[k]; ok {
				if _, safe := putsThen[k]; !safe {
					return nil, dels, ErrDuplicateKey
				}
			}
			if overlaps(dels, k) {
				return nil, dels, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		// etcd merges the children's deletes that overlap ["\x00", inf): that drops only intervals ending at or
		// before "\x00", which contain no key anyway.
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}

	for i := range ops {
		p := ops[i].Put
		if p == nil || ops[i].Range != nil || ops[i].Delete != nil || ops[i].Txn != nil {
			continue
		}
		k := string(p.Key)
		if _, ok := puts[k]; ok {
			return nil, dels, ErrDuplicateKey
		}
		if overlaps(dels, k) {
			return nil, dels, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
