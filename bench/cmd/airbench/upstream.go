package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// The bench's fake provider: one small process that every program under test talks to, plain
// HTTP on a few ports (one per phase, so that one phase's TIME_WAIT sockets cannot slow another's
// connects) and HTTPS (HTTP/2 and HTTP/1.1, a leaf for api.openai.com) on another. It
// answers like OpenAI's chat completions, but lean: nothing is recorded per request, so it costs
// the same at the millionth request as at the first (src/cmd/fakeprovider keeps every request
// for the tests' assertions, which would grow without bound over a benchmark).
//
//	POST /v1/chat/completions           small JSON answer (≈450 bytes)
//	POST … with "stream":true           SSE: 12 chunks and [DONE], each flushed
//	POST …?hold=1 with "stream":true    SSE: the first chunk, then nothing until the client leaves
//	POST …?hold=1&tick=100ms            SSE: the first chunk, then one every 100 ms until it leaves
//	POST /_hold/0/v1/chat/completions   the same as ?hold=1, and /_hold/100ms/v1/… as
//	                                    ?hold=1&tick=100ms, for proxies that pass no query on (Portkey)
//	GET  /v1/models                     small JSON
//	GET  /bytes?n=N                     N bytes (the relay throughput download)
//	GET  /_conns                        connections accepted so far: "plain tls"
//
// Requests without "Authorization: Bearer <key>" get 401, so a proxy that failed to inject the
// key shows up as errors in the load generator's output.

const benchKey = "sk-bench-router-key"

var (
	chatJSON = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench provider, a short answer.","refusal":null},` +
		`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30,` +
		`"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	modelsJSON = []byte(`{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"bench"}]}`)
	unauthJSON = []byte(`{"error":{"message":"invalid API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
	sseWords   = []string{"Hello ", "from ", "the ", "bench ", "provider, ", "a ", "short ", "streamed ", "answer ", "word ", "by ", "word."}
	zeros      = make([]byte, 256<<10)
)

func sseChunk(content string, finish string) []byte {
	f := "null"
	if finish != "" {
		f = `"` + finish + `"`
	}
	return []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"delta":{"content":"` + content + `"},"logprobs":null,"finish_reason":` + f + `}]}` + "\n\n")
}

var sseEvents = func() [][]byte {
	ev := [][]byte{sseChunk("", "")}
	for _, w := range sseWords {
		ev = append(ev, sseChunk(w, ""))
	}
	return append(ev, sseChunk("", "stop"), []byte("data: [DONE]\n\n"))
}()

type upstream struct {
	plainConns, tlsConns atomic.Int64
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	hold, tick := r.URL.Query().Get("hold") != "", r.URL.Query().Get("tick")
	if rest, ok := strings.CutPrefix(path, "/_hold/"); ok {
		t, p, _ := strings.Cut(rest, "/")
		hold, path = true, "/"+p
		if t != "0" {
			tick = t
		}
	}
	switch path {
	case "/v1/chat/completions":
		u.chat(w, r, hold, tick)
	case "/v1/models":
		if !authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(modelsJSON)
	case "/bytes":
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			b := zeros[:min(n, int64(len(zeros)))]
			if _, err := w.Write(b); err != nil {
				return
			}
			n -= int64(len(b))
		}
	case "/_conns":
		fmt.Fprintf(w, "%d %d\n", u.plainConns.Load(), u.tlsConns.Load())
	default:
		http.NotFound(w, r)
	}
}

func authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") == "Bearer "+benchKey && len(r.Header.Values("Authorization")) == 1 {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write(unauthJSON)
	return false
}

func (u *upstream) chat(w http.ResponseWriter, r *http.Request, hold bool, tickArg string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if !authorized(w, r) {
		return
	}
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(chatJSON)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if hold {
		w.Write(sseEvents[0])
		rc.Flush()
		// tick=DUR: one more event every DUR until the client leaves (CPU per event).
		if tick, err := time.ParseDuration(tickArg); err == nil && tick > 0 {
			t := time.NewTicker(tick)
			defer t.Stop()
			for i := 1; ; i++ {
				select {
				case <-r.Context().Done():
					return
				case <-t.C:
				}
				if _, err := w.Write(sseEvents[1+i%len(sseWords)]); err != nil || rc.Flush() != nil {
					return
				}
			}
		}
		<-r.Context().Done()
		return
	}
	for _, ev := range sseEvents {
		if _, err := w.Write(ev); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// runUpstream is `airbench upstream`.
func runUpstream(args []string) {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	plain := fs.String("plain", "127.0.0.1:0", "plain HTTP addresses, comma separated")
	tlsAddr := fs.String("tls", "127.0.0.1:0", "HTTPS address")
	cert := fs.String("cert", "", "leaf certificate (PEM)")
	key := fs.String("key", "", "leaf key (PEM)")
	fs.Parse(args)

	u := &upstream{}
	// Long timeouts: the memory runs hold a thousand idle connections for a while.
	newSrv := func() *http.Server {
		return &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Minute, IdleTimeout: 10 * time.Minute,
			ErrorLog: log.New(io.Discard, "", 0)}
	}
	var pls []net.Listener
	for _, a := range strings.Split(*plain, ",") {
		pl, err := net.Listen("tcp", a)
		if err != nil {
			log.Fatal(err)
		}
		pls = append(pls, pl)
	}
	tl, err := net.Listen("tcp", *tlsAddr)
	if err != nil {
		log.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	ps, ts := newSrv(), newSrv()
	ts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}}
	for _, pl := range pls {
		go ps.Serve(countingListener{pl, &u.plainConns})
	}
	go ts.ServeTLS(countingListener{tl, &u.tlsConns}, "", "")
	fmt.Printf("ready %s %s\n", *plain, tl.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}

// upstreamConns asks the fake how many connections it has accepted (plain, tls).
func upstreamConns(plainAddr string) (plain, tlsN int64) {
	c, err := net.DialTimeout("tcp", plainAddr, 2*time.Second)
	if err != nil {
		return -1, -1
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /_conns HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return -1, -1
	}
	defer res.Body.Close()
	fmt.Fscan(res.Body, &plain, &tlsN)
	return plain - 1, tlsN // not counting this connection
}
