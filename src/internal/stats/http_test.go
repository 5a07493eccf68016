package stats

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// serve starts a Server with Pages(sample) and a /echo page on loopback.
func serve(t *testing.T) (*Server, string, chan error) {
	t.Helper()
	pages := Pages(sample)
	pages["/echo"] = func(q url.Values) Doc {
		if q.Get("fail") != "" {
			return TextDoc(400, "fail: "+q.Get("fail"))
		}
		return Doc{Type: "text/plain", Body: []byte("days=" + q.Get("days"))}
	}
	srv := NewServer(pages)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, ln.Addr().String(), done
}

// raw sends req on a new connection and reads until the server closes it or a second passes
// without a byte (kept alive).
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// The status listener answers net/http's client as net/http's server did: /status JSON,
// /metrics in Prometheus' text format, 405 with Allow, 404 elsewhere, no caching.
func TestServerWithNetHTTPClient(t *testing.T) {
	_, addr, _ := serve(t)
	get := func(method, path string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := get("GET", "/status")
	var st Status
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" ||
		json.Unmarshal(body, &st) != nil || st.Config.Generation != 3 {
		t.Fatalf("/status: %d %v %s", res.StatusCode, res.Header, body)
	}
	// The same document, byte for byte, as json.Encoder with an indent wrote it.
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetIndent("", "  ")
	enc.Encode(sample())
	if !bytes.Equal(body, want.Bytes()) {
		t.Errorf("/status differs from json.Encoder's:\n%s\nwant\n%s", body, want.Bytes())
	}
	res, body = get("GET", "/metrics")
	var m bytes.Buffer
	WriteMetrics(&m, sample())
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain; version=0.0.4") || !bytes.Equal(body, m.Bytes()) {
		t.Fatalf("/metrics: %d %v\n%s", res.StatusCode, res.Header, body)
	}
	res, body = get("HEAD", "/metrics")
	if res.StatusCode != 200 || len(body) != 0 || res.ContentLength != int64(m.Len()) {
		t.Fatalf("HEAD /metrics: %d length %d body %q", res.StatusCode, res.ContentLength, body)
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{{"POST", "/status", 405}, {"DELETE", "/metrics", 405}, {"GET", "/", 404}, {"GET", "/debug/pprof/", 404}, {"GET", "/status/", 404}} {
		res, _ := get(c.method, c.path)
		if res.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, res.StatusCode, c.code)
		}
		if c.code == 405 && res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", c.method, c.path, res.Header.Get("Allow"))
		}
	}
	if res, body := get("GET", "/echo?days=7"); res.StatusCode != 200 || string(body) != "days=7" {
		t.Errorf("/echo?days=7: %d %q", res.StatusCode, body)
	}
	if res, body := get("GET", "/echo?fail=x"); res.StatusCode != 400 || string(body) != "fail: x\n" {
		t.Errorf("/echo?fail=x: %d %q", res.StatusCode, body)
	}
}

// Keep-alive and pipelining: requests on one connection are answered in order; HTTP/1.0 and
// Connection: close end it; a request with a body is answered and the connection closed.
func TestServerConnections(t *testing.T) {
	_, addr, _ := serve(t)
	got := raw(t, addr, "GET /echo?days=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?days=2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if strings.Count(got, "HTTP/1.1 200 OK\r\n") != 2 || !strings.Contains(got, "days=1") || strings.Index(got, "days=2") < strings.Index(got, "days=1") ||
		strings.Contains(got, "Connection: close") {
		t.Errorf("pipelined:\n%s", got)
	}
	for _, req := range []string{
		"GET /echo?days=3 HTTP/1.0\r\n\r\nGET /echo?days=4 HTTP/1.0\r\n\r\n",
		"GET /echo?days=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /echo?days=4 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /echo?days=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nGET /echo?days=4 HTT",
	} {
		got := raw(t, addr, req)
		if !strings.Contains(got, "Connection: close\r\n") || strings.Count(got, "HTTP/1.1 ") != 1 || strings.Contains(got, "days=4") {
			t.Errorf("%q:\n%s", req, got)
		}
	}
	for _, c := range []struct{ req, status string }{
		{"GET /status HTTP/1.1\r\n\r\n", "400"},                                       // no Host
		{"GET http://x/status HTTP/1.1\r\nHost: x\r\n\r\n", "400"},                    // absolute form
		{"GET /status HTTP/2.0\r\nHost: x\r\n\r\n", "505"},                            // not 1.x
		{"GET /status HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 9000), "431"}, // head too long
		{"GET /echo?days=%zz HTTP/1.1\r\nHost: x\r\n\r\n", "400"},                     // bad query
	} {
		got := raw(t, addr, c.req)
		if !strings.HasPrefix(got, "HTTP/1.1 "+c.status+" ") {
			t.Errorf("%.40q: got\n%s", c.req, got)
		}
	}
}

// Shutdown closes idle connections, lets Serve return nil, and Serve after it refuses.
func TestServerShutdown(t *testing.T) {
	srv, addr, done := serve(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("status: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the idle connection was not closed)", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the idle connection is still open after Shutdown: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := srv.Serve(ln); err == nil {
		t.Fatal("Serve after Shutdown accepted")
	}
}

// Get reads the status listener's answers and those of a net/http server (older daemons):
// Content-Length, chunked and close-delimited bodies, errors with their status.
func TestGet(t *testing.T) {
	_, addr, _ := serve(t)
	status, body, err := Get(addr, "/status", 5*time.Second, 1<<20)
	var st Status
	if err != nil || status != 200 || json.Unmarshal(body, &st) != nil || st.Version != "test" {
		t.Fatalf("Get /status: %d %v %s", status, err, body)
	}
	if status, body, err := Get(addr, "/echo?fail=why", 5*time.Second, 1<<20); err != nil || status != 400 || string(body) != "fail: why\n" {
		t.Fatalf("Get /echo?fail=why: %d %v %q", status, err, body)
	}
	if _, _, err := Get(addr, "/status", 5*time.Second, 100); err == nil || !strings.Contains(err.Error(), "larger than 100") {
		t.Fatalf("Get past maxBody: %v", err)
	}

	big := strings.Repeat("0123456789", 2000) // past net/http's 2 KiB buffer: chunked
	old := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, big)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go old.Serve(ln)
	defer old.Close()
	for _, q := range []string{"/chunked", "/chunked?close=1"} {
		status, body, err := Get(ln.Addr().String(), q, 5*time.Second, 1<<20)
		if err != nil || status != 200 || string(body) != big {
			t.Errorf("Get %s from net/http: %d %v, %d bytes", q, status, err, len(body))
		}
	}

	// Close-delimited, and not HTTP at all.
	for _, c := range []struct {
		answer, body, err string
	}{
		{"HTTP/1.0 200 OK\r\n\r\nall of it", "all of it", ""},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", "ok", ""},
		{"SSH-2.0-OpenSSH\r\n", "", "not an HTTP answer"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "", "unexpected EOF"},
	} {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		go func() {
			c2, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c2).ReadString('\n')
			io.WriteString(c2, c.answer)
			c2.Close()
		}()
		_, body, err := Get(ln.Addr().String(), "/status", 5*time.Second, 1<<20)
		ln.Close()
		if c.err == "" && (err != nil || string(body) != c.body) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: %q %v", c.answer, body, err)
		}
	}
	if status, _, err := Get("127.0.0.1:1", "/status", time.Second, 1<<20); err == nil || status != 0 {
		t.Errorf("Get from a closed port: %d %v", status, err)
	}
}

// The status listener and the CLI's client must not bring net/http (its server, transport and
// HTTP/2) or crypto/tls into the daemon (issue 22: package size).
func TestNoNetHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "net/http" || p == "crypto/tls" || strings.HasPrefix(p, "net/http/") {
			t.Errorf("package stats depends on %s", p)
		}
	}
}
