package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawExchange sends raw bytes to the gateway and reads until it closes the connection (or a
// few seconds pass); it returns what came back and whether the gateway closed.
func rawExchange(t *testing.T, e *env, send string) (string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err == nil
}

// TestMalformedRequestsRefused: what could smuggle a request past a proxy is answered 400 in
// the OpenAI shape, the connection closed, and nothing reaches the provider.
func TestMalformedRequestsRefused(t *testing.T) {
	up := startUpstream(t, "")
	e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"))
	const line = "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
	for _, tc := range []struct {
		name, send string
		status     string
	}{
		{"CL and TE", line + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"duplicate CL", line + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "400"},
		{"invalid CL", line + "Content-Length: 2x\r\n\r\n{}", "400"},
		{"TE not chunked", line + "Transfer-Encoding: gzip\r\n\r\n", "400"},
		{"obs-fold", line + "X-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\n{}", "400"},
		{"bare CR", line + "X-A: 1\r2\r\nContent-Length: 2\r\n\r\n{}", "400"},
		{"bare LF", "GET /openai/v1/models HTTP/1.1\nHost: gw\n\n", "400"},
		{"NUL", line + "X-A: \x00\r\nContent-Length: 2\r\n\r\n{}", "400"},
		{"absolute-form", "GET http://api.openai.com/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", "400"},
		{"CONNECT", "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com\r\n\r\n", "400"},
		{"bad chunk size", line + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", "400"},
		{"chunk extension abuse", line + "Transfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("x", 300) + "\r\n{}\r\n0\r\n\r\n", "400"},
		{"bytes after a chunk size", line + "Transfer-Encoding: chunked\r\n\r\n2 garbage\r\n{}\r\n0\r\n\r\n", "400"},
		{"chunk data without CRLF", line + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", "400"},
		{"HTTP/2.0", "GET /openai/v1/models HTTP/2.0\r\nHost: gw\r\n\r\n", "505"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, closed := rawExchange(t, e, tc.send+"GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
			if !strings.HasPrefix(got, "HTTP/1.1 "+tc.status+" ") {
				t.Fatalf("got %q, want a %s", got, tc.status)
			}
			if !closed || strings.Count(got, "HTTP/1.1 ") != 1 {
				t.Errorf("the connection went on after a malformed request: %q", got)
			}
			head, body, _ := strings.Cut(got, "\r\n\r\n")
			if !strings.Contains(head, "Connection: close") || !strings.HasPrefix(body, `{"error":{"message":"`) {
				t.Errorf("not an OpenAI-shaped error that closes: %q", got)
			}
		})
	}
	for _, r := range up.Records() {
		if r.Path == "/v1/chat/completions" {
			t.Errorf("a malformed request reached the provider: %+v", r)
		}
	}
}

// dotPaths are request paths and whether they hold a dot segment as some upstream or CDN
// resolves it (hasDotSegment).
var dotPaths = []struct {
	path string
	dot  bool
}{
	{"/openai/v1/chat/completions", false},
	{"/openai/../anthropic/v1/messages", true},
	{"/openai/./v1/models", true},
	{"/openai/v1/..", true},
	{"/openai/v1/.", true},
	{"/openai/%2e%2e/anthropic/v1/messages", true},
	{"/openai/%2E%2e/anthropic", true},
	{"/openai/.%2e/anthropic", true},
	{"/openai/%2e/v1", true},
	// '\' and its encodings end a segment, as many normalisers read them
	{`/openai/..\anthropic/v1/messages`, true},
	{`/openai\..\anthropic/v1/messages`, true},
	{`/openai/v1\..`, true},
	{`/openai/.\v1/models`, true},
	{"/openai/..%5canthropic/v1/messages", true},
	{"/openai/..%5Canthropic/v1/messages", true},
	{"/openai/%2e%2e%5canthropic/v1/messages", true},
	{"/openai/%2E%2E%5Canthropic", true},
	{`/openai/.%2e\anthropic`, true},
	{"/openai/%5c..%5canthropic", true},
	{"/openai/v1%5c..", true},
	// an encoded '/' (nginx decodes it first) and path parameters (Tomcat, Jetty)
	{"/openai/..%2fanthropic/v1/messages", true},
	{"/openai/..%2Fanthropic", true},
	{"/openai/..;/anthropic/v1/messages", true},
	{"/openai/..;x/anthropic", true},
	{"/openai/.;/v1", true},
	// dots that are part of a name, and backslashes that end no dot segment, pass
	{"/openai/v1/files/file-abc.jsonl", false},
	{"/openai/.well-known/x", false},
	{"/openai/v1/...", false},
	{"/openai/v1/..../x", false},
	{"/openai/..x/y", false},
	{"/openai/x../y", false},
	{"/openai/%2e%2e%2e/y", false},
	{"/openai/%2e%2ex", false},
	{`/openai/v1\models`, false},
	{`/openai/a\b\c`, false},
	{"/openai/a%5cb%2fc", false},
	{`/openai/\\x`, false},
	{"/openai//v1", false},
	{"/gemini/v1beta/models/gemini-pro:generateContent", false},
	{"/openai/v1;x", false},
	// a '%' that encodes nothing the check reads
	{"/openai/%", false},
	{"/openai/.%", false},
	{"/openai/..%2", false},
	{"/openai/%%2e%2e", false},
	{"/openai/%252e%252e/x", false},
	{"", false},
	{".", true},
	{"..", true},
	{"%2e", true},
	{`\`, false},
}

func TestHasDotSegment(t *testing.T) {
	for _, tt := range dotPaths {
		if got := hasDotSegment(tt.path); got != tt.dot {
			t.Errorf("hasDotSegment(%q) = %v, want %v", tt.path, got, tt.dot)
		}
	}
	dot := false
	if n := testing.AllocsPerRun(100, func() { dot = hasDotSegment(`/openai/v1/%2e%2E\x;y/..%5c`) }); n != 0 || !dot {
		t.Errorf("%v allocations (dot segment found: %v)", n, dot)
	}
}

// FuzzHasDotSegment holds hasDotSegment to the rule written plainly: decode the dots and
// separators, split, look for "." and "..".
func FuzzHasDotSegment(f *testing.F) {
	for _, tt := range dotPaths {
		f.Add(tt.path)
	}
	plain := strings.NewReplacer("%2e", ".", "%2E", ".", "%2f", "/", "%2F", "/", "%5c", "/", "%5C", "/", `\`, "/", ";", "/")
	f.Fuzz(func(t *testing.T, p string) {
		want := false
		for _, seg := range strings.Split(plain.Replace(p), "/") {
			want = want || seg == "." || seg == ".."
		}
		if got := hasDotSegment(p); got != want {
			t.Fatalf("hasDotSegment(%q) = %v, want %v", p, got, want)
		}
	})
}

// TestDotSegmentsRefused: two providers behind one host under two base paths (an AI gateway);
// a device allowed only one of them cannot reach the other through a dot segment in any
// spelling an upstream resolves: 400 invalid_path, and the provider hears nothing.
func TestDotSegmentsRefused(t *testing.T) {
	up := startUpstream(t, "")
	e := startGateway(t, mainSection()+
		provider("openai", up.URL()+"/gw/openai", keyOpenAI, "bearer")+
		provider("anthropic", up.URL()+"/gw/anthropic", keyAnthropic, "x-api-key")+
		"\nconfig client 'me'\n\tlist ip '127.0.0.1'\n\tlist provider 'openai'\n")
	for _, path := range []string{`/openai/..\anthropic/v1/messages`, "/openai/..%5canthropic/v1/messages", "/openai/..%5Canthropic/v1/messages",
		"/openai/%2e%2e%5canthropic/v1/messages", `/openai/.%2e\anthropic/v1/messages`, "/openai/..%2fanthropic/v1/messages",
		"/openai/..;/anthropic/v1/messages", `/openai/v1\..\..\anthropic/v1/messages`} {
		t.Run(path, func(t *testing.T) {
			got, _ := rawExchange(t, e, "POST "+path+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
			head, body, _ := strings.Cut(got, "\r\n\r\n")
			if !strings.HasPrefix(head, "HTTP/1.1 400 ") || !strings.Contains(body, `"code":"invalid_path"`) {
				t.Errorf("got %q, want 400 invalid_path", got)
			}
		})
	}
	// a backslash in a name is no dot segment: it goes on (the fake has no such path: 404)
	if got, _ := rawExchange(t, e, "GET /openai/v1/a\\b HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"); strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Errorf("a backslash inside a name: %q", got)
	}
	for _, r := range up.Records() {
		if r.Path != `/gw/openai/v1/a\b` {
			t.Errorf("the provider got %s with %s", r.Path, describeKey(r.Header.Get("Authorization")))
		}
	}
	if n := len(up.Records()); n != 1 {
		t.Errorf("the provider got %d requests, want the one with a backslash in a name", n)
	}
}

func TestHeaderTooLarge431(t *testing.T) {
	up := startUpstream(t, "")
	e := startGateway(t, mainSection("max_header_bytes", "1K")+provider("openai", up.URL(), keyOpenAI, "bearer"))
	req, _ := http.NewRequest("GET", e.base+"/openai/v1/models", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 2000))
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	wantAPIError(t, res, string(body), 431, "request_header_too_large")
	// Just under the limit passes.
	req.Header.Set("X-Big", strings.Repeat("b", 800))
	if res, err := e.client.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("a head under max_header_bytes: %v %v", res, err)
	}
}

// TestExpectContinue: a device that waits for 100 Continue gets it and then its answer.
func TestExpectContinue(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"))
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: "+
		itoa(len(chatBody))+"\r\n\r\n")
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, chatBody)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", res, err)
	}
	if rec := nextArrival(t, up); rec.Header.Get("Expect") != "" || string(rec.Body) != chatBody {
		t.Errorf("provider got Expect %q body %q", rec.Header.Get("Expect"), rec.Body)
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

// TestPipelinedAndHTTP10: requests sent back to back are answered in order; an HTTP/1.0
// device gets its answer without chunking, and the connection closes after it.
func TestPipelinedAndHTTP10(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"))
	req := "GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n"
	got, closed := rawExchange(t, e, req+req+"GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if n := strings.Count(got, "HTTP/1.1 200 "); n != 3 || !closed {
		t.Errorf("%d answers, closed %v: %q", n, closed, got)
	}
	got, closed = rawExchange(t, e, "POST /openai/v1/chat/completions HTTP/1.0\r\nContent-Length: "+itoa(len(chatStream))+"\r\n\r\n"+chatStream)
	head, body, _ := strings.Cut(got, "\r\n\r\n")
	if !closed || !strings.HasPrefix(head, "HTTP/1.1 200 ") || strings.Contains(head, "chunked") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("HTTP/1.0 stream: closed %v %q", closed, got)
	}
}

// TestHopByHopNeverForwarded: hop-by-hop fields, and those a Connection field names, go
// neither to the provider nor back to the device.
func TestHopByHopNeverForwarded(t *testing.T) {
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("Trailer", "X-T")
		w.Header().Set("X-Up-Kept", "1")
		io.WriteString(w, "{}")
	}))
	defer up.Close()
	e := startGateway(t, mainSection()+provider("openai", up.URL, keyOpenAI, "bearer"))
	res, _ := e.do("GET", "/openai/v1/models", "", "Connection", "X-Hop, Upgrade", "X-Hop", "1", "Upgrade", "websocket",
		"Proxy-Authorization", "Basic eA==", "Te", "trailers", "Trailer", "X-T", "Keep-Alive", "timeout=1", "X-Kept", "1")
	for _, h := range []string{"X-Hop", "Upgrade", "Proxy-Authorization", "Te", "Trailer", "Keep-Alive"} {
		if v := seen.Get(h); v != "" {
			t.Errorf("%s reached the provider: %q", h, v)
		}
	}
	if seen.Get("X-Kept") != "1" {
		t.Errorf("an end-to-end header was dropped on the way up")
	}
	for _, h := range []string{"X-Up-Hop", "Keep-Alive", "Proxy-Authenticate", "Trailer"} {
		if v := res.Header.Get(h); v != "" {
			t.Errorf("%s reached the device: %q", h, v)
		}
	}
	if res.Header.Get("X-Up-Kept") != "1" {
		t.Errorf("an end-to-end header was dropped on the way down")
	}
}
