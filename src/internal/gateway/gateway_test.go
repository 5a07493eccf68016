package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/fakeprovider"
)

const chatBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
const chatStream = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`

// wantAPIError checks the gateway's own error: its status and the OpenAI shape.
func wantAPIError(t *testing.T, res *http.Response, body string, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", res.StatusCode, status, body)
	}
	var v struct {
		Error *struct {
			Message, Type, Code string
		}
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error == nil || v.Error.Message == "" || v.Error.Type == "" {
		t.Fatalf("not an OpenAI-shaped error: %q (%v)", body, err)
	}
	if v.Error.Code != code {
		t.Errorf("code %q, want %q", v.Error.Code, code)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestStreamingEachEventBeforeTheNext proves there is no buffering: the fake produces each
// event only after the test has received the one before it through the gateway.
func TestStreamingEachEventBeforeTheNext(t *testing.T) {
	overTLSAndPlain(t, func(t *testing.T, url func(*upstream) string) {
		up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
		e := startGateway(t, mainSection()+provider("openai", url(up), keyOpenAI, "bearer"))

		req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
		req.Header.Set("Authorization", "Bearer sk-placeholder")
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if res.ContentLength != -1 || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
			t.Errorf("a stream got Content-Length %d, Transfer-Encoding %v", res.ContentLength, res.TransferEncoding)
		}
		sr := readSSE(res.Body)
		var got []string
		for {
			ev := sr.next(t, 5*time.Second, fmt.Sprintf("event %d", len(got)))
			got = append(got, ev)
			if ev == "[DONE]" {
				break
			}
			// The fake is blocked until this send: the event above crossed the gateway on its own.
			select {
			case up.Step <- struct{}{}:
			case <-time.After(5 * time.Second):
				t.Fatalf("the fake never asked for event %d", len(got))
			}
		}
		if want := len(up.Words()) + 4; len(got) != want { // role, words, stop, usage, [DONE]
			t.Errorf("%d events, want %d", len(got), want)
		}
		var text strings.Builder
		for _, ev := range got[:len(got)-1] {
			var c struct {
				Choices []struct{ Delta struct{ Content string } }
			}
			if err := json.Unmarshal([]byte(ev), &c); err != nil {
				t.Fatalf("event %q: %v", ev, err)
			}
			for _, ch := range c.Choices {
				text.WriteString(ch.Delta.Content)
			}
		}
		if text.String() != up.Text {
			t.Errorf("text %q, want %q", text.String(), up.Text)
		}
		e.idle()
		in, out := up.Usage()
		if v := e.values("openai"); v.TokensIn != uint64(in) || v.TokensOut != uint64(out) {
			t.Errorf("tokens %d/%d, want %d/%d", v.TokensIn, v.TokensOut, in, out)
		}
	})
}

func TestDeviceDisconnectCancelsUpstream(t *testing.T) {
	overTLSAndPlain(t, func(t *testing.T, url func(*upstream) string) {
		// Step is never fed: the stream stays open after its first event.
		up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
		e := startGateway(t, mainSection()+provider("openai", url(up), keyOpenAI, "bearer"))

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readSSE(res.Body).next(t, 5*time.Second, "first event")
		rec := nextArrival(t, up)
		select {
		case <-rec.Cancelled:
			t.Fatal("cancelled before the device left")
		default:
		}
		cancel() // the client closes its connection to the gateway
		waitClosed(t, rec.Cancelled, "the provider to see its request cancelled")
		e.idle()
	})
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFailoverBeforeFirstByte(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*fakeprovider.Server)
		refused bool
		opts    []string
		body    io.Reader // nil: chatBody with a Content-Length
	}{
		{name: "500", set: func(f *fakeprovider.Server) { f.Status = 500 }},
		{name: "503", set: func(f *fakeprovider.Server) { f.Status = 503 }},
		{name: "429", set: func(f *fakeprovider.Server) { f.Status = 429 }},
		{name: "connection refused", refused: true},
		{name: "first byte timeout", opts: []string{"first_byte_timeout", "300ms"}, set: func(f *fakeprovider.Server) { f.Hang = true }},
		{name: "chunked body replayed", body: io.MultiReader(strings.NewReader(chatBody)), set: func(f *fakeprovider.Server) { f.Status = 502 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var set []func(*fakeprovider.Server)
			if tc.set != nil {
				set = append(set, tc.set)
			}
			primary, backup := startUpstream(t, keyOpenAI, set...), startUpstream(t, keyBackup)
			url := primary.URL()
			if tc.refused {
				url = "https://" + closedAddr(t)
			}
			e := startGateway(t, mainSection(tc.opts...)+
				provider("openai", url, keyOpenAI, "bearer", "fallback", "backup")+
				provider("backup", backup.URL(), keyBackup, "bearer"))
			body := tc.body
			if body == nil {
				body = strings.NewReader(chatBody)
			}
			req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions?trace=1", body)
			req.Header.Set("Authorization", "Bearer sk-placeholder")
			res, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(got), `"chat.completion"`) {
				t.Fatalf("status %d: %s", res.StatusCode, got)
			}
			rec := nextArrival(t, backup)
			if rec.Path != "/v1/chat/completions" || rec.Query != "trace=1" || string(rec.Body) != chatBody {
				t.Errorf("backup got %s ?%s %q", rec.Path, rec.Query, rec.Body)
			}
			if a := rec.Header.Get("Authorization"); a != "Bearer "+keyBackup {
				t.Errorf("backup got the wrong key") // (never print a key)
			}
			e.idle()
			if v := e.values("openai"); v.Errors != 1 {
				t.Errorf("primary errors %d, want 1", v.Errors)
			}
			if v := e.values("backup"); v.Requests != 1 || v.Status[2] != 1 || v.TokensIn != 21 {
				t.Errorf("backup counters %+v", v)
			}
			if v := e.values(""); v.Requests != 1 || v.Status[2] != 1 {
				t.Errorf("device counters %+v", v)
			}
			if tc.name == "first byte timeout" {
				waitClosed(t, nextArrival(t, primary).Cancelled, "the hung primary to be cancelled")
			}
		})
	}
}

func TestNoFailoverAfterBytesReachedDevice(t *testing.T) {
	primary := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.DropAfter = 3 })
	backup := startUpstream(t, keyBackup)
	e := startGateway(t, mainSection()+
		provider("openai", primary.URL(), keyOpenAI, "bearer", "fallback", "backup")+
		provider("backup", backup.URL(), keyBackup, "bearer"))
	req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || err == nil {
		t.Fatalf("status %d, read error %v: a cut stream must reach the device as cut", res.StatusCode, err)
	}
	if n := strings.Count(string(body), "data: "); n != 3 {
		t.Errorf("%d events before the cut, want 3", n)
	}
	e.idle()
	if n := len(backup.Records()); n != 0 {
		t.Errorf("the backup got %d requests after bytes had reached the device", n)
	}
	if v := e.values("openai"); v.Errors != 1 {
		t.Errorf("errors %d, want 1", v.Errors)
	}
}

func TestNoFailoverForBodyPastRetryBody(t *testing.T) {
	primary := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Status = 500 })
	backup := startUpstream(t, keyBackup)
	e := startGateway(t, mainSection("retry_body", "1K")+
		provider("openai", primary.URL(), keyOpenAI, "bearer", "fallback", "backup")+
		provider("backup", backup.URL(), keyBackup, "bearer"))
	big := `{"model":"m","pad":"` + strings.Repeat("x", 4000) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body)
		}
		req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", body)
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// The primary's own answer passes through: the body was streamed, not kept.
		if res.StatusCode != 500 || !strings.Contains(string(got), "told to fail") {
			t.Errorf("chunked=%v: status %d %s", chunked, res.StatusCode, got)
		}
		if rec := nextArrival(t, primary); string(rec.Body) != big {
			t.Errorf("chunked=%v: the primary got %d bytes, want %d", chunked, len(rec.Body), len(big))
		}
	}
	if n := len(backup.Records()); n != 0 {
		t.Errorf("the backup got %d requests for bodies past retry_body", n)
	}
}

func TestLastProviderAnswerPassesThrough(t *testing.T) {
	primary := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Status = 500 })
	backup := startUpstream(t, keyBackup, func(f *fakeprovider.Server) { f.Status = 503 })
	e := startGateway(t, mainSection()+
		provider("openai", primary.URL(), keyOpenAI, "bearer", "fallback", "backup")+
		provider("backup", backup.URL(), keyBackup, "bearer"))
	res, body := e.do("POST", "/openai/v1/chat/completions", chatBody)
	if res.StatusCode != 503 || !strings.Contains(body, "told to fail") {
		t.Fatalf("status %d %s", res.StatusCode, body)
	}
}

func TestAllUnreachable(t *testing.T) {
	e := startGateway(t, mainSection()+
		provider("openai", "https://"+closedAddr(t), keyOpenAI, "bearer", "fallback", "backup")+
		provider("backup", "https://"+closedAddr(t), keyBackup, "bearer"))
	res, body := e.do("POST", "/openai/v1/chat/completions", chatBody)
	wantAPIError(t, res, body, 502, "bad_gateway")
	e.idle()
	if v := e.values(""); v.Errors != 2 || v.Status[5] != 1 {
		t.Errorf("device counters %+v", v)
	}
}

func TestFirstByteTimeout504(t *testing.T) {
	up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Hang = true })
	e := startGateway(t, mainSection("first_byte_timeout", "300ms")+provider("openai", up.URL(), keyOpenAI, "bearer"))
	start := time.Now()
	res, body := e.do("POST", "/openai/v1/chat/completions", chatBody)
	wantAPIError(t, res, body, 504, "upstream_timeout")
	waitClosed(t, nextArrival(t, up).Cancelled, "the hung provider to be cancelled")
	t.Logf("504 after %v", time.Since(start).Round(time.Millisecond))
	e.idle()
	if v := e.values("openai"); v.Errors != 1 || v.Status[5] != 1 {
		t.Errorf("counters %+v", v)
	}
}

func TestStreamIdleTimeoutCutsStream(t *testing.T) {
	overTLSAndPlain(t, func(t *testing.T, url func(*upstream) string) {
		up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) }) // never fed
		e := startGateway(t, mainSection("stream_idle_timeout", "300ms")+provider("openai", url(up), keyOpenAI, "bearer"))
		req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil || strings.Contains(string(body), "[DONE]") {
			t.Fatalf("the stream was not cut: %v %q", err, body)
		}
		waitClosed(t, nextArrival(t, up).Cancelled, "the idle provider to be cancelled")
		e.idle()
		if v := e.values("openai"); v.Errors != 1 {
			t.Errorf("errors %d, want 1", v.Errors)
		}
	})
}

func TestDenied(t *testing.T) {
	up := startUpstream(t, "")
	t.Run("default_access deny", func(t *testing.T) {
		e := startGateway(t, mainSection("default_access", "deny")+provider("openai", up.URL(), keyOpenAI, "bearer"))
		res, body := e.do("POST", "/openai/v1/chat/completions", chatBody)
		wantAPIError(t, res, body, 403, "access_denied")
		e.idle()
		if v := e.values("openai"); v.Denied != 1 || v.Requests != 1 || v.Status[4] != 1 {
			t.Errorf("counters %+v", v)
		}
	})
	t.Run("client by ip limited to other providers", func(t *testing.T) {
		e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer")+
			provider("anthropic", up.URL(), keyAnthropic, "x-api-key")+
			"\nconfig client 'me'\n\tlist ip '127.0.0.0/8'\n\tlist provider 'anthropic'\n")
		res, body := e.do("POST", "/openai/v1/chat/completions", chatBody)
		wantAPIError(t, res, body, 403, "access_denied")
		if res, body := e.do("POST", "/anthropic/v1/messages", chatBody); res.StatusCode != 200 {
			t.Errorf("allowed provider: %d %s", res.StatusCode, body)
		}
	})
	t.Run("client by mac", func(t *testing.T) {
		mac, _ := net.ParseMAC("02:00:00:aa:bb:cc")
		e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer")+
			"\nconfig client 'kid'\n\tlist mac '02:00:00:aa:bb:cc'\n\toption access 'deny'\n",
			func(o *Options) {
				o.MAC = func(a netip.Addr) net.HardwareAddr {
					if a == netip.MustParseAddr("127.0.0.1") {
						return mac
					}
					return nil
				}
			})
		res, body := e.do("POST", "/openai/v1/chat/completions", chatBody)
		wantAPIError(t, res, body, 403, "access_denied")
		var infos = e.reg.Device(netip.MustParseAddr("127.0.0.1"))
		if infos.MAC() != mac.String() {
			t.Errorf("device MAC %q not recorded", infos.MAC())
		}
	})
	for _, r := range up.Records() {
		if r.Path == "/v1/chat/completions" {
			t.Errorf("a denied request reached the provider")
		}
	}
}

// TestDisabledRelaysNothing: with option enabled '0' the gateway answers every provider
// request itself, 503 disabled, and tells the SDKs not to retry; no provider is reached and no
// key sent, whatever the request's shape. Switched back on (a reload), a request goes through.
func TestDisabledRelaysNothing(t *testing.T) {
	up := startUpstream(t, "")
	conf := func(enabled string) string {
		return mainSection() + "\toption enabled '" + enabled + "'\n" +
			provider("openai", up.URL(), keyOpenAI, "bearer") +
			provider("anthropic", up.PlainURL(), keyAnthropic, "x-api-key", "fallback", "openai")
	}
	e := startGateway(t, conf("0"))
	for _, tt := range []struct {
		name, method, path, body string
	}{
		{"json", "POST", "/openai/v1/chat/completions", chatBody},
		{"stream", "POST", "/openai/v1/chat/completions", chatStream},
		{"no body", "GET", "/openai/v1/models", ""},
		{"plain provider with a fallback", "POST", "/anthropic/v1/messages", chatBody},
		{"body past smallBody", "POST", "/openai/v1/chat/completions", `{"model":"` + strings.Repeat("y", 20<<10) + `"}`},
		{"device key in the query", "POST", "/openai/v1/chat/completions?key=sk-device-own", chatBody},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := e.do(tt.method, tt.path, tt.body)
			wantAPIError(t, res, body, 503, "disabled")
			if !strings.Contains(body, "option enabled '0'") || res.Header.Get("x-should-retry") != "false" || res.Header.Get("Retry-After") != "" {
				t.Errorf("headers %v, body %s", res.Header, body)
			}
		})
	}
	res, body := e.do("GET", "/nowhere/v1/models", "")
	wantAPIError(t, res, body, 404, "unknown_provider")
	e.idle()
	if n, recs := e.dials.Load(), up.Records(); n != 0 || len(recs) != 0 {
		t.Fatalf("switched off, the gateway dialled %d times and the provider got %d requests", n, len(recs))
	}
	if v := e.values("openai"); v.Requests != 5 || v.Status[5] != 5 || v.Denied != 0 {
		t.Errorf("openai counters %+v", v)
	}

	e.table.Store(loadTable(t, conf("1")))
	if res, body := e.do("POST", "/openai/v1/chat/completions", chatBody); res.StatusCode != 200 {
		t.Fatalf("switched on: %d %s", res.StatusCode, body)
	}
	if got := nextArrival(t, up).Header.Get("Authorization"); got != "Bearer "+keyOpenAI {
		t.Errorf("switched on, the provider got %s", describeKey(got))
	}
}

// TestFailClosedRefusalSaysOnlyWhere: with no valid config, a device refused on a broken
// provider learns where the config is wrong, not the value: here a Gemini key pasted into
// the upstream URL, which every device (and any web page that reaches the gateway) would
// otherwise read back. No provider is asked.
func TestFailClosedRefusalSaysOnlyWhere(t *testing.T) {
	const pasted = "AIzaSyPASTED-user-key-0123456789"
	up := startUpstream(t, "")
	uci := mainSection() + provider("openai", up.URL(), keyOpenAI, "bearer") +
		"\nconfig provider 'gemini'\n\tlist host 'generativelanguage.googleapis.com'\n\toption prefix '/gemini'\n" +
		"\toption upstream 'https://generativelanguage.googleapis.com/v1beta?key=" + pasted + "'\n"
	tab, err := config.FailClosed("airelay", []byte(uci), nil)
	if err == nil {
		t.Fatal("the config passed")
	}
	e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"))
	e.table.Store(tab)
	res, body := e.do("POST", "/gemini/v1beta/models/g:generateContent", chatBody)
	wantAPIError(t, res, body, 403, "config_invalid")
	if !strings.Contains(body, "section 'gemini' option 'upstream'") {
		t.Errorf("the device is not told where the config is wrong: %s", body)
	}
	for _, no := range []string{pasted, "googleapis", "value", "api_key"} {
		if strings.Contains(body, no) {
			t.Errorf("the device reads %q: %s", no, body)
		}
	}
	if n := e.dials.Load(); n != 0 {
		t.Errorf("%d provider connections for a refused request", n)
	}
	if v := e.values("gemini"); v.Denied != 1 || v.Status[4] != 1 {
		t.Errorf("counters %+v", v)
	}
}

func TestRoutingErrors(t *testing.T) {
	up := startUpstream(t, "")
	e := startGateway(t, mainSection("max_body", "1K")+provider("openai", up.URL(), keyOpenAI, "bearer")+
		provider("kept", up.URL(), keyOpenAI, "bearer", "fallback", "openai"))
	res, body := e.do("GET", "/nowhere/v1/models", "")
	wantAPIError(t, res, body, 404, "unknown_provider")
	res, body = e.do("GET", "/openai/v1/../../x", "")
	wantAPIError(t, res, body, 400, "invalid_path")

	big := strings.Repeat("x", 4096)
	for _, prefix := range []string{"/openai", "/kept"} { // streamed, and kept for a fallback
		res, body = e.do("POST", prefix+"/v1/chat/completions", big)
		wantAPIError(t, res, body, 413, "request_too_large")
		req, _ := http.NewRequest("POST", e.base+prefix+"/v1/chat/completions", io.MultiReader(strings.NewReader(big)))
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wantAPIError(t, res, string(b), 413, "request_too_large")
	}
	for _, r := range up.Records() {
		if len(r.Body) > 1024 {
			t.Errorf("the provider got a %d byte body past max_body", len(r.Body))
		}
	}
	// A body right at the limit passes.
	if res, body := e.do("POST", "/openai/v1/chat/completions", `{"model":"`+strings.Repeat("y", 1024-12)+`"}`); res.StatusCode != 200 {
		t.Errorf("body at max_body: %d %s", res.StatusCode, body)
	}
}

func TestKeyPolicy(t *testing.T) {
	up := startUpstream(t, "") // accepts any single key, so the test sees what was sent
	e := startGateway(t, mainSection()+
		provider("fill", up.URL(), keyOpenAI, "bearer")+
		provider("replace", up.URL(), keyOpenAI, "bearer", "key_policy", "replace")+
		provider("pass", up.URL(), keyOpenAI, "bearer", "key_policy", "pass")+
		provider("nokey", up.URL(), "", "bearer")+
		provider("anthropic", up.URL(), keyAnthropic, "x-api-key")+
		provider("gemini", up.URL(), keyGemini, "x-goog-api-key")+
		provider("gemreplace", up.URL(), keyGemini, "x-goog-api-key", "key_policy", "replace"))
	const own = "sk-device-own-key"
	type hdrs = map[string]string
	for _, tc := range []struct {
		name, path string
		send       []string
		want       hdrs // header → value; "" must be absent
		wantQuery  string
	}{
		{"fill: none", "/fill/v1/models", nil, hdrs{"Authorization": "Bearer " + keyOpenAI}, ""},
		{"fill: placeholder", "/fill/v1/models", []string{"Authorization", "Bearer sk-placeholder"}, hdrs{"Authorization": "Bearer " + keyOpenAI}, ""},
		{"fill: empty bearer", "/fill/v1/models", []string{"Authorization", "Bearer "}, hdrs{"Authorization": "Bearer " + keyOpenAI}, ""},
		{"fill: placeholder in another header", "/fill/v1/models", []string{"X-Api-Key", "dummy"}, hdrs{"Authorization": "Bearer " + keyOpenAI, "X-Api-Key": ""}, ""},
		{"fill: own key", "/fill/v1/models", []string{"Authorization", "Bearer " + own}, hdrs{"Authorization": "Bearer " + own}, ""},
		{"replace: own key", "/replace/v1/models", []string{"Authorization", "Bearer " + own}, hdrs{"Authorization": "Bearer " + keyOpenAI}, ""},
		{"pass: placeholder", "/pass/v1/models", []string{"Authorization", "Bearer sk-placeholder"}, hdrs{"Authorization": "Bearer sk-placeholder"}, ""},
		{"pass: none", "/pass/v1/models", nil, hdrs{"Authorization": ""}, ""},
		{"no api_key: own key", "/nokey/v1/models", []string{"Authorization", "Bearer " + own}, hdrs{"Authorization": "Bearer " + own}, ""},
		{"anthropic: two placeholders", "/anthropic/v1/messages", []string{"Authorization", "Bearer x", "X-Api-Key", "sk-ant-placeholder"},
			hdrs{"X-Api-Key": keyAnthropic, "Authorization": ""}, ""},
		{"anthropic: own key", "/anthropic/v1/messages", []string{"X-Api-Key", own}, hdrs{"X-Api-Key": own}, ""},
		{"gemini: placeholder in query", "/gemini/v1beta/models/g:generateContent?key=none&alt=json", nil,
			hdrs{"X-Goog-Api-Key": keyGemini}, "alt=json"},
		{"gemini: own key in query", "/gemini/v1beta/models/g:generateContent?key=" + own, nil, hdrs{"X-Goog-Api-Key": ""}, "key=" + own},
		// Names are compared percent-decoded (Google decodes them: %24key is $key) and in any
		// case; $key is Google's documented alias of key, access_token its OAuth parameter.
		{"gemini replace: every spelling of the device's key goes", "/gemreplace/v1beta/models/g:generateContent?KEY=" + own +
			"&%6bey=" + own + "&ke%79=" + own + "&alt=sse&%24key=" + own + "&$KEY=" + own + "&Key=" + own + "&access_token=" + own + "&key&x=1",
			nil, hdrs{"X-Goog-Api-Key": keyGemini}, "alt=sse&x=1"},
		{"gemini fill: own key under an encoded name", "/gemini/v1beta/models/g:generateContent?%6bey=" + own, nil, hdrs{"X-Goog-Api-Key": ""}, "%6bey=" + own},
		{"gemini fill: placeholder under $key", "/gemini/v1beta/models/g:generateContent?alt=sse&%24key=none", nil, hdrs{"X-Goog-Api-Key": keyGemini}, "alt=sse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, body := "GET", ""
			if !strings.HasSuffix(tc.path, "/models") {
				method, body = "POST", chatBody
			}
			res, got := e.do(method, tc.path, body, tc.send...)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, got)
			}
			rec := nextArrival(t, up)
			for h, want := range tc.want {
				if g := rec.Header.Get(h); g != want {
					// Keys are not printed: say which one arrived.
					t.Errorf("%s: got %s, want %s", h, describeKey(g), describeKey(want))
				}
			}
			if rec.Query != tc.wantQuery {
				t.Errorf("query %q, want %q", rec.Query, tc.wantQuery)
			}
		})
	}
}

func describeKey(v string) string {
	for _, k := range allKeys {
		if strings.Contains(v, k) {
			return "the router's key"
		}
	}
	if v == "" {
		return "nothing"
	}
	return fmt.Sprintf("%q", v)
}

// TestTokenCounts runs every format, JSON and streamed, through the gateway against fakes that
// accept only the router's key, and checks tokens and bytes per provider.
func TestTokenCounts(t *testing.T) {
	overTLSAndPlain(t, func(t *testing.T, url func(*upstream) string) {
		usage := func(f *fakeprovider.Server) { f.InputTokens, f.OutputTokens = 1234, 567 }
		oa, an, ge := startUpstream(t, keyOpenAI, usage), startUpstream(t, keyAnthropic, usage), startUpstream(t, keyGemini, usage)
		e := startGateway(t, mainSection()+provider("openai", url(oa), keyOpenAI, "bearer")+
			provider("anthropic", url(an), keyAnthropic, "x-api-key")+
			provider("gemini", url(ge), keyGemini, "x-goog-api-key"))
		for _, tc := range []struct {
			name, provider, path, body string
			in, out                    uint64
		}{
			{"openai chat json", "openai", "/openai/v1/chat/completions", chatBody, 1234, 567},
			{"openai chat stream with include_usage", "openai", "/openai/v1/chat/completions", chatStream, 1234, 567},
			{"openai chat stream without usage", "openai", "/openai/v1/chat/completions", `{"model":"m","stream":true}`, 0, 0},
			{"openai responses json", "openai", "/openai/v1/responses", `{"model":"m","input":"hi"}`, 1234, 567},
			{"openai responses stream", "openai", "/openai/v1/responses", `{"model":"m","input":"hi","stream":true}`, 1234, 567},
			{"anthropic json", "anthropic", "/anthropic/v1/messages", `{"model":"c","max_tokens":9,"messages":[]}`, 1234, 567},
			{"anthropic stream", "anthropic", "/anthropic/v1/messages", `{"model":"c","max_tokens":9,"stream":true,"messages":[]}`, 1234, 567},
			{"gemini json", "gemini", "/gemini/v1beta/models/g:generateContent", `{"contents":[]}`, 1234, 567},
			{"gemini sse", "gemini", "/gemini/v1beta/models/g:streamGenerateContent?alt=sse", `{"contents":[]}`, 1234, 567},
			{"gemini json array stream", "gemini", "/gemini/v1beta/models/g:streamGenerateContent", `{"contents":[]}`, 1234, 567},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.values(tc.provider)
				res, body := e.do("POST", tc.path, tc.body, "Authorization", "Bearer sk-placeholder")
				if res.StatusCode != 200 {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				e.idle()
				after := e.values(tc.provider)
				if in, out := after.TokensIn-before.TokensIn, after.TokensOut-before.TokensOut; in != tc.in || out != tc.out {
					t.Errorf("tokens %d/%d, want %d/%d", in, out, tc.in, tc.out)
				}
				if up, down := after.BytesUp-before.BytesUp, after.BytesDown-before.BytesDown; up != uint64(len(tc.body)) || down != uint64(len(body)) {
					t.Errorf("bytes up/down %d/%d, want %d/%d", up, down, len(tc.body), len(body))
				}
			})
		}
	})
}

// TestStreamUsage: with stream_usage, a stream that did not ask for usage is counted all the
// same, the provider is asked for it, and the device gets exactly the stream it asked for.
func TestStreamUsage(t *testing.T) {
	overTLSAndPlain(t, func(t *testing.T, url func(*upstream) string) {
		up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.InputTokens, f.OutputTokens = 1234, 567 })
		e := startGateway(t, mainSection()+provider("openai", url(up), keyOpenAI, "bearer", "stream_usage", "1")+
			provider("plain", url(up), keyOpenAI, "bearer"))
		noUsage := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		for _, tc := range []struct {
			name, provider, body string
			in, out              uint64
			asked, usageChunk    bool // the provider was asked for usage; the device got the usage chunk
		}{
			{"stream_usage, device did not ask", "openai", noUsage, 1234, 567, true, false},
			{"stream_usage, device asked itself", "openai", chatStream, 1234, 567, true, true},
			{"stream_usage, not a stream", "openai", chatBody, 1234, 567, false, false},
			{"no stream_usage", "plain", noUsage, 0, 0, false, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.values(tc.provider)
				res, body := e.do("POST", "/"+tc.provider+"/v1/chat/completions", tc.body)
				if res.StatusCode != 200 {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				rec := up.Records()[len(up.Records())-1]
				if got := bytes.Contains(rec.Body, []byte(`"include_usage":true`)); got != tc.asked {
					t.Errorf("provider asked for usage: %v, want %v (body %s)", got, tc.asked, rec.Body)
				}
				if got := strings.Contains(body, `"choices":[]`); got != tc.usageChunk {
					t.Errorf("device got the usage chunk: %v, want %v:\n%s", got, tc.usageChunk, body)
				}
				if strings.Contains(tc.body, `"stream":true`) && !strings.HasSuffix(body, "data: [DONE]\n\n") {
					t.Errorf("stream does not end with [DONE]: %q", body)
				}
				e.idle()
				after := e.values(tc.provider)
				if in, out := after.TokensIn-before.TokensIn, after.TokensOut-before.TokensOut; in != tc.in || out != tc.out {
					t.Errorf("tokens %d/%d, want %d/%d", in, out, tc.in, tc.out)
				}
				// Bytes are the device's: what it sent and what it got, not what the provider saw.
				if up, down := after.BytesUp-before.BytesUp, after.BytesDown-before.BytesDown; up != uint64(len(tc.body)) || down != uint64(len(body)) {
					t.Errorf("bytes up/down %d/%d, want %d/%d", up, down, len(tc.body), len(body))
				}
			})
		}
	})
}

// TestUpstreamPooledAndRebuiltOnReload: the gateway speaks HTTP/1.1 to providers (HTTP/2
// offered or not) over one kept-alive connection, and a new table gets new connections.
func TestUpstreamPooledAndRebuiltOnReload(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	uci := mainSection() + provider("openai", up.URL(), keyOpenAI, "bearer")
	e := startGateway(t, uci)
	for i := range 5 {
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/openai/v1/models", nil)
		res, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if i > 0 && !reused {
			t.Errorf("request %d: the device's connection was not kept alive", i)
		}
		if p := nextArrival(t, up).Proto; p != "HTTP/1.1" {
			t.Fatalf("upstream protocol %s, want HTTP/1.1", p)
		}
	}
	if n, d := up.newConns.Load(), e.dials.Load(); n != 1 || d != 1 {
		t.Errorf("%d upstream connections, %d dials for 5 requests; want 1 pooled", n, d)
	}
	e.table.Store(loadTable(t, uci)) // a reload: same text, new table
	if res, _ := e.do("GET", "/openai/v1/models", ""); res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	if n := up.newConns.Load(); n != 2 {
		t.Errorf("%d upstream connections after a reload, want 2 (a new transport)", n)
	}
	eventually(t, "the old transport's idle connection to close", func() bool { return up.closed.Load() >= 1 })
}

func TestConnectOverrideHostAndHopByHop(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	// The upstream is named as in production; connect sends it to the fake, whose certificate
	// is for api.openai.com, so TLS verifies the name, not the address.
	e := startGateway(t, mainSection()+provider("openai", "https://api.openai.com/base", keyOpenAI, "bearer", "connect", up.Addr()))
	res, body := e.do("POST", "/openai/v1/chat/completions?a=1&b=2", chatBody,
		"Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5", "Te", "gzip",
		"X-Forwarded-For", "10.9.9.9", "Forwarded", "for=10.9.9.9", "X-Custom", "kept",
		"Accept-Encoding", "gzip")
	if res.StatusCode != 404 || !strings.Contains(body, "unknown path /base/v1/chat/completions") {
		t.Fatalf("status %d %s (want the fake's 404 for the base path)", res.StatusCode, body)
	}
	rec := nextArrival(t, up)
	if rec.Host != "api.openai.com" || rec.Query != "a=1&b=2" {
		t.Errorf("Host %q query %q", rec.Host, rec.Query)
	}
	for _, h := range []string{"X-Hop", "Keep-Alive", "Te", "X-Forwarded-For", "Forwarded", "Accept-Encoding"} {
		if v := rec.Header.Get(h); v != "" {
			t.Errorf("%s reached the provider: %q", h, v)
		}
	}
	if rec.Header.Get("X-Custom") != "kept" {
		t.Errorf("an end-to-end header was dropped")
	}
}

func TestShutdownLetsStreamsFinish(t *testing.T) {
	up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
	e := startGateway(t, mainSection()+provider("openai", up.URL(), keyOpenAI, "bearer"))
	req, _ := http.NewRequest("POST", e.base+"/openai/v1/chat/completions", strings.NewReader(chatStream))
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sr := readSSE(res.Body)
	sr.next(t, 5*time.Second, "first event")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.gw.Shutdown(ctx)
	}()
	addr := strings.TrimPrefix(e.base, "http://")
	eventually(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a stream open", err)
	default:
	}
	for {
		select {
		case up.Step <- struct{}{}:
		case <-time.After(5 * time.Second):
			t.Fatal("the fake stopped asking")
		}
		if sr.next(t, 5*time.Second, "event") == "[DONE]" {
			break
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the stream finished")
	}
}

// TestKeysNeverShown drives the paths that log and answer errors, with debug logging on; the
// env's cleanup then checks logs, /status, /metrics and error bodies for every key.
func TestKeysNeverShown(t *testing.T) {
	up := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Status = 500 })
	hung := startUpstream(t, keyOpenAI, func(f *fakeprovider.Server) { f.Hang = true })
	e := startGateway(t, mainSection("max_body", "1K", "first_byte_timeout", "200ms")+
		provider("openai", up.URL(), keyOpenAI, "bearer", "fallback", "backup")+
		provider("backup", "https://"+closedAddr(t), keyBackup, "bearer")+
		provider("gemini", up.URL(), keyGemini, "x-goog-api-key", "key_policy", "pass")+
		provider("hung", hung.URL(), keyOpenAI, "bearer"))
	e.do("POST", "/openai/v1/chat/completions", chatBody)
	e.do("POST", "/openai/v1/chat/completions", strings.Repeat("z", 2048))
	e.do("GET", "/nowhere", "")
	e.do("POST", "/gemini/v1beta/models/g:generateContent?key="+keyGemini, chatBody) // a device sending a key in the query
	e.do("POST", "/hung/v1/chat/completions", chatBody)
	e.idle()
	logs := e.logs.String()
	for _, want := range []string{"provider failed", "gateway request"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q, so the check proves little:\n%s", want, logs)
		}
	}
	if len(e.bodies) < 3 {
		t.Errorf("only %d gateway error bodies captured", len(e.bodies))
	}
}

// TestMaxConns: past max_conns, while every connection is busy, a device waits in the accept
// queue; it is served as soon as one goes idle (which is closed for it) or closes. Nothing is
// refused.
func TestMaxConns(t *testing.T) {
	up := startUpstream(t, "", func(f *fakeprovider.Server) { f.Step = make(chan struct{}) })
	e := startGateway(t, mainSection("max_conns", "1")+provider("openai", up.URL(), keyOpenAI, "bearer"))
	addr := strings.TrimPrefix(e.base, "http://")
	// send connects and sends req, keeping the connection alive.
	send := func(req string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The first is busy: a stream the fake holds after its first event.
	first := send("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: " + itoa(len(chatStream)) + "\r\n\r\n" + chatStream)
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := readStatusLine(first); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("first connection: %q %v", line, err)
	}
	// The second is connected by the kernel but not served while the first streams.
	second := send("GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if line, err := readStatusLine(second); err == nil {
		t.Fatalf("second connection served past max_conns 1: %q", line)
	}
	close(up.Step) // the stream ends; the first connection is idle, and is closed for the second
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := readStatusLine(second); err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("second connection after the first went idle: %q %v", line, err)
	}
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, first); err != nil {
		t.Errorf("the idle first connection was not closed: %v", err)
	}
}

// readStatusLine reads up to the end of the first line of an answer.
func readStatusLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// waitParked waits until a goroutine whose stack holds fn waits for its socket.
func waitParked(t *testing.T, fn string) {
	t.Helper()
	if !parked(fn) {
		t.Fatalf("no goroutine in %s waits for its socket", fn)
	}
}

// parked reports whether, within 5 s, a goroutine whose stack holds fn waits for its socket.
func parked(fn string) bool {
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, fn) {
				return true
			}
		}
	}
	return false
}

// TestNoProviderReadBeforeItsAnswer: a request held in memory for a plain provider is written
// from inside the wait for its answer, so the gateway never reads the provider's socket before
// the answer can have come (a read that finds nothing per request before: 20 in 20).
func TestNoProviderReadBeforeItsAnswer(t *testing.T) {
	var empty atomic.Int64
	testHookEmptyRead = func() { empty.Add(1) }
	t.Cleanup(func() { testHookEmptyRead = nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	go func() { // one kept-alive connection; each answer only once the gateway waits for it
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			if !parked("gateway.(*exchange).upFill(") {
				t.Error("the gateway never waited for the answer")
				return
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	}()
	e := startGateway(t, mainSection()+provider("openai", "http://"+ln.Addr().String(), keyOpenAI, "bearer"))
	const n = 20
	for i := range n {
		res, err := e.client.Post(e.base+"/openai/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "{}" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, b)
		}
	}
	if got := empty.Load(); got != 0 {
		t.Errorf("%d reads of the provider found nothing in %d requests", got, n)
	}
}
