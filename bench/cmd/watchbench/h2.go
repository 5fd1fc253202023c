package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

// The -client h2 driver speaks gRPC over HTTP/2 itself, for Watch streams
// only: one goroutine per connection reads its frames and hands each gRPC
// message to its stream's handler, in place. grpc-go's client does more per
// message (a reader goroutine that queues each frame for the stream's own
// goroutine, which reads it back through a parser): at a million events a
// second that was half the driver's CPU, on the two cores the servers use
// too. What goes over the wire is what any gRPC client sends: the same
// headers, length-prefixed WatchRequest and WatchResponse messages, and
// flow control (h2Window per stream, h2ConnWindow per connection, returned
// as the messages are handled). Both systems get the same driver.

const (
	h2Window     = 1 << 20 // receive window per stream
	h2ConnWindow = 16 << 20
	h2ReadBuf    = 64 << 10
	watchPath    = "/etcdserverpb.Watch/Watch"
)

// ErrH2 is returned when the HTTP/2 conversation goes wrong.
var ErrH2 = errors.New("watchbench: h2")

// h2conn is one HTTP/2 connection carrying watch streams.
type h2conn struct {
	nc   net.Conn
	fr   *http2.Framer
	host string

	wmu     sync.Mutex // serializes writes (and stream IDs, which must rise in the order their HEADERS are sent)
	bw      *bufio.Writer
	henc    *hpack.Encoder
	hbuf    bytes.Buffer
	nextID  uint32
	sendWin int64 // connection send window: the creates must fit (they are small)

	mu      sync.Mutex // protects streams
	streams map[uint32]*h2stream

	connUnacked int // read loop only: bytes received and not yet returned
}

// h2stream is one watch stream's receiving side.
type h2stream struct {
	s       *wstream
	partial []byte // a gRPC message not yet complete
	unacked int
	resp    lightResponse
}

// dialH2 opens an HTTP/2 connection to endpoint and starts its read loop,
// which ends when ctx is canceled.
func dialH2(ctx context.Context, endpoint string) (*h2conn, error) {
	host := hostPort(endpoint)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrH2, host, err)
	}
	c := &h2conn{nc: nc, host: host, bw: bufio.NewWriterSize(nc, 32<<10), nextID: 1, sendWin: 65535, streams: map[uint32]*h2stream{}}
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, h2ReadBuf))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.SetReuseFrames()
	c.henc = hpack.NewEncoder(&c.hbuf)
	_, err = c.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window})
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("%w: preface to %s: %w", ErrH2, host, err)
	}
	go func() {
		<-ctx.Done()
		_ = nc.Close()
	}()
	go c.readLoop(ctx)
	return c, nil
}

// open starts a Watch stream for s and sends its create requests; the
// responses go to s.receive.
func (c *h2conn) open(s *wstream, reqs []*pb.WatchRequest) error {
	var body []byte
	for _, r := range reqs {
		m, err := proto.Marshal(r)
		if err != nil {
			return err
		}
		body = append(body, 0)
		body = binary.BigEndian.AppendUint32(body, uint32(len(m)))
		body = append(body, m...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if int64(len(body)) > c.sendWin || len(body) > 65535 {
		return fmt.Errorf("%w: %d bytes of create requests do not fit the send window", ErrH2, len(body))
	}
	id := c.nextID
	c.nextID += 2
	c.mu.Lock()
	c.streams[id] = &h2stream{s: s}
	c.mu.Unlock()
	c.hbuf.Reset()
	var err error
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: watchPath},
		{Name: ":authority", Value: c.host}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	} {
		if err == nil {
			err = c.henc.WriteField(f)
		}
	}
	if err == nil {
		err = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	}
	for rest := body; err == nil && len(rest) > 0; {
		n := min(len(rest), 16384)
		err = c.fr.WriteData(id, false, rest[:n])
		rest = rest[n:]
	}
	c.sendWin -= int64(len(body))
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		c.mu.Lock()
		delete(c.streams, id)
		c.mu.Unlock()
		return fmt.Errorf("%w: open stream: %w", ErrH2, err)
	}
	return nil
}

func (c *h2conn) readLoop(ctx context.Context) {
	err := c.serve()
	if ctx.Err() != nil {
		err = nil // closed on purpose
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, st := range c.streams {
		st.s.end(err)
		delete(c.streams, id)
	}
}

// serve reads frames until the connection fails.
func (c *h2conn) serve() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("%w: read: %w", ErrH2, err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if err := c.data(f); err != nil {
				return err
			}
		case *http2.MetaHeadersFrame:
			c.headers(f)
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = c.write(func() error { return c.fr.WritePing(true, f.Data) })
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.wmu.Lock()
				c.sendWin += int64(f.Increment)
				c.wmu.Unlock()
			}
		case *http2.RSTStreamFrame:
			c.finish(f.StreamID, fmt.Errorf("%w: stream reset: %v", ErrH2, f.ErrCode))
		case *http2.GoAwayFrame:
			return fmt.Errorf("%w: GOAWAY %v %q", ErrH2, f.ErrCode, f.DebugData())
		}
		if err != nil {
			return fmt.Errorf("%w: write: %w", ErrH2, err)
		}
	}
}

func (c *h2conn) write(fn func() error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// data feeds a DATA frame to its stream, message by message, and returns
// the window once half of it has been used.
func (c *h2conn) data(f *http2.DataFrame) error {
	n := int(f.Length) // flow control counts the padding too
	c.mu.Lock()
	st := c.streams[f.StreamID]
	c.mu.Unlock()
	var streamInc int
	if st != nil {
		if err := st.feed(f.Data()); err != nil {
			c.finish(f.StreamID, err)
		} else if st.unacked += n; st.unacked >= h2Window/2 && !f.StreamEnded() {
			streamInc, st.unacked = st.unacked, 0
		}
	}
	if f.StreamEnded() {
		c.finish(f.StreamID, fmt.Errorf("%w: stream ended without trailers", ErrH2))
	}
	var connInc int
	if c.connUnacked += n; c.connUnacked >= h2ConnWindow/2 {
		connInc, c.connUnacked = c.connUnacked, 0
	}
	if connInc == 0 && streamInc == 0 {
		return nil
	}
	return c.write(func() error {
		if connInc > 0 {
			if err := c.fr.WriteWindowUpdate(0, uint32(connInc)); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return c.fr.WriteWindowUpdate(f.StreamID, uint32(streamInc))
		}
		return nil
	})
}

// feed hands every complete gRPC message in b (with what came before) to
// the stream. b is only valid until the next frame is read.
func (st *h2stream) feed(b []byte) error {
	if len(st.partial) > 0 {
		st.partial = append(st.partial, b...)
		b = st.partial
	}
	for len(b) >= 5 {
		if b[0] != 0 {
			return fmt.Errorf("%w: compressed message", ErrH2)
		}
		size := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+size {
			break
		}
		if err := st.s.receive(b[5:5+size], &st.resp); err != nil {
			return err
		}
		b = b[5+size:]
	}
	st.partial = append(st.partial[:0], b...)
	return nil
}

// headers handles response headers and trailers: a stream that ends
// ends with its grpc-status.
func (c *h2conn) headers(f *http2.MetaHeadersFrame) {
	if status := f.PseudoValue("status"); status != "" && status != "200" {
		c.finish(f.StreamID, fmt.Errorf("%w: HTTP status %s", ErrH2, status))
		return
	}
	if !f.StreamEnded() {
		return
	}
	var code, msg string
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "grpc-status":
			code = hf.Value
		case "grpc-message":
			msg = hf.Value
		}
	}
	var err error
	if code != "0" {
		err = fmt.Errorf("%w: stream ended: grpc-status %s: %s", ErrH2, code, msg)
	}
	c.finish(f.StreamID, err)
}

// finish ends stream id with err (nil: ended normally).
func (c *h2conn) finish(id uint32, err error) {
	c.mu.Lock()
	st := c.streams[id]
	delete(c.streams, id)
	c.mu.Unlock()
	if st != nil {
		st.s.end(err)
	}
}
