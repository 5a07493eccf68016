package stats

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/airelay/airelay/src/internal/h1"
	"github.com/airelay/airelay/src/internal/jsonw"
)

// The status listener speaks HTTP/1.1 through package h1, the gateway's own framing, instead of
// net/http: GET and HEAD of a few fixed paths, each answered with a whole document and its
// Content-Length. That is all /status, /metrics and /history need, and it keeps net/http's
// server (and with the CLI's client, its transport) out of the binary.

// Doc is one answer of the status listener.
type Doc struct {
	Status int    // 0 is 200
	Type   string // Content-Type
	Body   []byte
}

// Page answers GET and HEAD of one path; query is the request's query, parsed.
type Page func(query url.Values) Doc

// TextDoc is a plain-text answer, for errors.
func TextDoc(status int, msg string) Doc {
	return Doc{Status: status, Type: "text/plain; charset=utf-8", Body: []byte(msg + "\n")}
}

// JSONDoc is v as indented JSON (what /status and /history answer).
func JSONDoc(v jsonw.Value) Doc {
	b, err := jsonw.MarshalIndent(v)
	if err != nil {
		return TextDoc(500, err.Error())
	}
	return Doc{Type: "application/json", Body: append(b, '\n')}
}

// Pages are /status (JSON) and /metrics (Prometheus text) from snapshot, which is called once
// per request; callers add their own paths to the map.
func Pages(snapshot func() *Status) map[string]Page {
	return map[string]Page{
		"/status": func(url.Values) Doc { return JSONDoc(snapshot()) },
		"/metrics": func(url.Values) Doc {
			var b bytes.Buffer
			_ = WriteMetrics(&b, snapshot())
			return Doc{Type: "text/plain; version=0.0.4; charset=utf-8", Body: b.Bytes()}
		},
	}
}

// Limits of the status listener. Its clients are the CLI, LuCI (through the CLI) and a
// Prometheus scraper, on loopback: small heads, a few connections.
const (
	statusHeadMax   = 8 << 10          // a longer request head is refused (431)
	statusConnsMax  = 64               // connections past this are closed at once
	statusHeadWait  = 5 * time.Second  // for a whole head once its first byte is in
	statusIdleWait  = time.Minute      // for the next request on a kept-alive connection
	statusWriteWait = 10 * time.Second // for an answer to be taken by the client
)

// Server serves Pages on the status listener. The zero value is not ready: use NewServer.
type Server struct {
	pages   map[string]Page
	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[net.Conn]bool // true while a request is being answered
	closing bool
	done    sync.WaitGroup
}

// NewServer serves pages (path → Page, paths without a query).
func NewServer(pages map[string]Page) *Server {
	return &Server{pages: pages, lns: map[net.Listener]struct{}{}, conns: map[net.Conn]bool{}}
}

// errServerClosed is what Serve returns when called after Shutdown.
var errServerClosed = errors.New("status: server closed")

// Serve accepts connections on ln until Shutdown or until ln fails; it returns nil after
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return errServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.mu.Lock()
		if s.closing || len(s.conns) >= statusConnsMax {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = false
		s.done.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Shutdown stops accepting, closes idle connections, lets the answers being written finish
// until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.lns {
		ln.Close()
	}
	for c, busy := range s.conns {
		if !busy {
			c.Close()
		}
	}
	s.mu.Unlock()
	idle := make(chan struct{})
	go func() { s.done.Wait(); close(idle) }()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-idle
		return ctx.Err()
	}
}

// setBusy marks c answering (true) or waiting for a request (false); false when the server is
// shutting down and c must not take another request.
func (s *Server) setBusy(c net.Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = busy
	return !s.closing
}

// serveConn answers the requests of one connection in order, until it closes, asks to close,
// sends a body (not read: the connection closes after the answer) or breaks a limit.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.done.Done()
	}()
	buf := make([]byte, statusHeadMax)
	n := 0
	var req h1.Request
	var out []byte
	for {
		// Read until a whole head is in: statusIdleWait for its first byte, statusHeadWait
		// from then on for the rest.
		head := 0
		for {
			if n > 0 {
				var err error
				if head, err = h1.ParseRequest(buf[:n], &req); err != nil {
					status := 400
					var he *h1.Error
					if errors.As(err, &he) {
						status = he.Status
					}
					s.answer(c, out[:0], nil, TextDoc(status, err.Error()), true)
					return
				}
				if head > 0 {
					break
				}
				if n == len(buf) {
					s.answer(c, out[:0], nil, TextDoc(431, "request head too large"), true)
					return
				}
			} else {
				c.SetReadDeadline(time.Now().Add(statusIdleWait))
			}
			m, err := c.Read(buf[n:])
			if n == 0 && m > 0 {
				c.SetReadDeadline(time.Now().Add(statusHeadWait))
			}
			n += m
			if err != nil && m == 0 {
				return
			}
		}
		if !s.setBusy(c, true) {
			return
		}
		// A request with a body is answered and the connection closed, the body unread.
		closeAfter := req.Close || req.Chunked || req.ContentLength > 0
		out = s.answer(c, out[:0], &req, s.page(&req), closeAfter)
		if closeAfter || out == nil || !s.setBusy(c, false) {
			return
		}
		n = copy(buf, buf[head:n])
	}
}

// page is the Doc for req.
func (s *Server) page(req *h1.Request) Doc {
	m := string(req.Method)
	if m != "GET" && m != "HEAD" {
		return TextDoc(405, "method not allowed")
	}
	p, ok := s.pages[string(req.Path)]
	if !ok {
		return TextDoc(404, "404 page not found")
	}
	q, err := url.ParseQuery(string(req.Query))
	if err != nil {
		return TextDoc(400, "malformed query: "+err.Error())
	}
	return p(q)
}

// answer writes d on c (its head only for HEAD) and returns out for reuse; nil when the write
// failed. closing adds Connection: close.
func (s *Server) answer(c net.Conn, out []byte, req *h1.Request, d Doc, closing bool) []byte {
	status := d.Status
	if status == 0 {
		status = 200
	}
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, h1.StatusText(status)...)
	out = append(out, "\r\nContent-Type: "...)
	out = append(out, d.Type...)
	out = append(out, "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(d.Body)), 10)
	if status == 405 {
		out = append(out, "\r\nAllow: GET, HEAD"...)
	}
	if closing {
		out = append(out, "\r\nConnection: close"...)
	}
	out = append(out, "\r\n\r\n"...)
	c.SetWriteDeadline(time.Now().Add(statusWriteWait))
	bufs := net.Buffers{out}
	if req == nil || string(req.Method) != "HEAD" {
		bufs = append(bufs, d.Body)
	}
	if _, err := bufs.WriteTo(c); err != nil {
		return nil
	}
	return out
}
