package watch

// The synced watchers are indexed by what they watch so that an event costs O(watchers it matches), not
// O(all watchers): single-key watchers sit in a map by key; range watchers sit in an interval treap (a binary
// search tree ordered by interval, with random priorities for balance and each node augmented with the largest
// end in its subtree). Watchers of the same interval share one node, so a thousand watchers of one prefix cost one
// node. A stabbing query ("which intervals contain key k") visits only subtrees whose largest end is above k and
// whose starts are at or below k: O(log n + m·log n) for n distinct intervals, m of which match.

// wset is a set of watchers with O(1) add and remove and cheap iteration: a slice, each watcher knowing its slot.
// A watcher is in at most one wset at a time (the synced index or the unsynced list).
type wset struct{ ws []*watcher }

func (s *wset) add(w *watcher) {
	w.slot = len(s.ws)
	s.ws = append(s.ws, w)
}

func (s *wset) remove(w *watcher) {
	last := len(s.ws) - 1
	moved := s.ws[last]
	s.ws[w.slot] = moved
	moved.slot = w.slot
	s.ws[last] = nil
	s.ws = s.ws[:last]
	w.slot = -1
}

func (s *wset) len() int { return len(s.ws) }

// bound is the end of an interval: a key, or +infinity (every key >= start).
type bound struct {
	key string
	inf bool
}

// above reports whether the end lies strictly above key k (so that k is inside an interval ending at b).
func (b bound) above(k string) bool { return b.inf || b.key > k }

func (b bound) less(o bound) bool {
	switch {
	case b.inf:
		return false
	case o.inf:
		return true
	}
	return b.key < o.key
}

type ivl struct {
	lo string
	hi bound
}

func (a ivl) less(b ivl) bool {
	if a.lo != b.lo {
		return a.lo < b.lo
	}
	return a.hi.less(b.hi)
}

type node struct {
	iv          ivl
	prio        uint64
	maxHi       bound // largest hi in the subtree
	left, right *node
	set         wset
}

func (n *node) fix() {
	n.maxHi = n.iv.hi
	if n.left != nil && n.maxHi.less(n.left.maxHi) {
		n.maxHi = n.left.maxHi
	}
	if n.right != nil && n.maxHi.less(n.right.maxHi) {
		n.maxHi = n.right.maxHi
	}
}

// index holds the synced watchers. Not safe for concurrent use: the Registry's mu protects it.
type index struct {
	keys  map[string]*wset
	nodes map[ivl]*node // every node of the treap, by interval
	root  *node
	seq   uint64 // feeds the treap priorities (deterministic, no global randomness)
	n     int    // watchers
}

func newIndex() *index {
	return &index{keys: make(map[string]*wset), nodes: make(map[ivl]*node)}
}

// splitmix64 turns a counter into a well-spread priority.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (x *index) add(w *watcher) {
	x.n++
	if w.single() {
		s := x.keys[string(w.key)]
		if s == nil {
			s = &wset{}
			x.keys[string(w.key)] = s
		}
		s.add(w)
		return
	}
	iv := w.interval()
	n := x.nodes[iv]
	if n == nil {
		x.seq++
		n = &node{iv: iv, prio: splitmix64(x.seq)}
		n.fix()
		x.nodes[iv] = n
		x.root = insert(x.root, n)
	}
	n.set.add(w)
}

func (x *index) remove(w *watcher) {
	x.n--
	if w.single() {
		s := x.keys[string(w.key)]
		s.remove(w)
		if s.len() == 0 {
			delete(x.keys, string(w.key))
		}
		return
	}
	iv := w.interval()
	n := x.nodes[iv]
	n.set.remove(w)
	if n.set.len() == 0 {
		delete(x.nodes, iv)
		x.root = del(x.root, iv)
	}
}

// each calls f for every watcher watching key k.
func (x *index) each(k []byte, f func(w *watcher)) {
	if s := x.keys[string(k)]; s != nil {
		for _, w := range s.ws {
			f(w)
		}
	}
	if x.root != nil {
		stab(x.root, string(k), f)
	}
}

// all calls f for every watcher in the index.
func (x *index) all(f func(w *watcher)) {
	for _, s := range x.keys {
		for _, w := range s.ws {
			f(w)
		}
	}
	for _, n := range x.nodes {
		for _, w := range n.set.ws {
			f(w)
		}
	}
}

func stab(n *node, k string, f func(w *watcher)) {
	for n != nil && n.maxHi.above(k) {
		if n.left != nil {
			stab(n.left, k, f)
		}
		if n.iv.lo > k {
			return // this node and its right subtree start after k
		}
		if n.iv.hi.above(k) {
			for _, w := range n.set.ws {
				f(w)
			}
		}
		n = n.right
	}
}

func rotateRight(n *node) *node {
	l := n.left
	n.left = l.right
	l.right = n
	n.fix()
	l.fix()
	return l
}

func rotateLeft(n *node) *node {
	r := n.right
	n.right = r.left
	r.left = n
	n.fix()
	r.fix()
	return r
}

func insert(root, n *node) *node {
	if root == nil {
		return n
	}
	if n.iv.less(root.iv) {
		root.left = insert(root.left, n)
		if root.left.prio > root.prio {
			return rotateRight(root)
		}
	} else {
		root.right = insert(root.right, n)
		if root.right.prio > root.prio {
			return rotateLeft(root)
		}
	}
	root.fix()
	return root
}

func del(root *node, iv ivl) *node {
	if root == nil {
		return nil
	}
	switch {
	case iv.less(root.iv):
		root.left = del(root.left, iv)
	case root.iv.less(iv):
		root.right = del(root.right, iv)
	default:
		switch {
		case root.left == nil:
			return root.right
		case root.right == nil:
			return root.left
		case root.left.prio > root.right.prio:
			root = rotateRight(root)
			root.right = del(root.right, iv)
		default:
			root = rotateLeft(root)
			root.left = del(root.left, iv)
		}
	}
	root.fix()
	return root
}
