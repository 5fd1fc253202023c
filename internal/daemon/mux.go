package daemon

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"sync"
	"time"
)

// splitListener serves gRPC and plain HTTP on one port, as etcd does: it
// peeks at each connection's first bytes and hands connections that open
// with the HTTP/2 client preface to the gRPC listener and all others to the
// HTTP listener. (gRPC served natively keeps its fast path; grpc-go's
// ServeHTTP would not.)
type splitListener struct {
	ln    net.Listener
	grpc  *chanListener
	http  *chanListener
	once  sync.Once
	donec chan struct{}
}

var http2Preface = []byte("PRI * HTTP/2.0")

func newSplitListener(ln net.Listener) *splitListener {
	s := &splitListener{ln: ln, donec: make(chan struct{})}
	s.grpc = newChanListener(ln.Addr(), s.donec)
	s.http = newChanListener(ln.Addr(), s.donec)
	go s.serve()
	return s
}

func (s *splitListener) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			s.Close()
			return
		}
		go s.route(conn)
	}
}

func (s *splitListener) route(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 64)
	head, err := br.Peek(len(http2Preface))
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil && len(head) == 0 {
		conn.Close()
		return
	}
	pc := &peekedConn{Conn: conn, r: br}
	target := s.http
	if bytes.Equal(head, http2Preface) {
		target = s.grpc
	}
	select {
	case target.c <- pc:
	case <-target.closed:
		conn.Close()
	case <-s.donec:
		conn.Close()
	}
}

// dialGRPC returns an in-memory connection to the gRPC side, for this
// member's own client (the Lock and Election services run etcd's recipes
// through it).
func (s *splitListener) dialGRPC(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case s.grpc.c <- server:
		return client, nil
	case <-s.grpc.closed:
	case <-s.donec:
	case <-ctx.Done():
		client.Close()
		return nil, ctx.Err()
	}
	client.Close()
	return nil, net.ErrClosed
}

// Close stops accepting; connections already handed over stay open.
func (s *splitListener) Close() error {
	var err error
	s.once.Do(func() {
		close(s.donec)
		err = s.ln.Close()
	})
	return err
}

// chanListener is one side of a splitListener. Closing it (as a server's
// Stop does) ends its Accept; the shared listener stays open.
type chanListener struct {
	addr   net.Addr
	c      chan net.Conn
	done   chan struct{} // the splitListener closed
	closed chan struct{} // this side closed
	once   sync.Once
}

func newChanListener(addr net.Addr, done chan struct{}) *chanListener {
	return &chanListener{addr: addr, c: make(chan net.Conn), done: done, closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}
func (l *chanListener) Addr() net.Addr { return l.addr }

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
