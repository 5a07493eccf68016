package gateway

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// ask runs body through usageAsk: whole after a prescan (a body in memory), or streamed in
// pieces of n bytes without one.
func ask(body string, n int) (string, bool) {
	var a usageAsk
	var out []byte
	if n == 0 {
		a.prescan([]byte(body))
		out = a.finish(a.rewrite(nil, []byte(body)))
	} else {
		for p := []byte(body); len(p) > 0; p = p[min(n, len(p)):] {
			out = a.rewrite(out, p[:min(n, len(p))])
		}
		out = a.finish(out)
	}
	return string(out), a.asked()
}

func TestUsageAsk(t *testing.T) {
	const on = `"stream_options":{"include_usage":true}`
	for _, tc := range []struct {
		in, want string
		asked    bool
		streamed string // what a body streamed (no prescan) becomes, when not want
	}{
		{`{"model":"m","stream":true}`, `{"model":"m","stream":true,` + on + `}`, true, ""},
		{" \n{ \"stream\" : true, \"model\":\"m\"} ", " \n{ \"stream\" : true, \"model\":\"m\"," + on + "} ", true, ""},
		{`{"model":"m","stream":false}`, `{"model":"m","stream":false}`, false, ""},
		{`{"model":"m"}`, `{"model":"m"}`, false, ""},
		{`{"stream":true,"stream_options":{"include_usage":false}}`, `{"stream":true,"stream_options":{"include_usage":true }}`, true, ""},
		{`{"stream":true,"stream_options":{"include_usage" : null }}`, `{"stream":true,"stream_options":{"include_usage" : true }}`, true, ""},
		{`{"stream":true,"stream_options":{"include_usage":true}}`, `{"stream":true,"stream_options":{"include_usage":true}}`, false, ""},
		{`{"stream":true,"stream_options":{}}`, `{"stream":true,` + on + `}`, true, ""},
		{`{"stream":true,"stream_options":{ }}`, `{"stream":true,"stream_options":{ "include_usage":true}}`, true, ""},
		{`{"stream":true,"stream_options":{"x":[1,{"include_usage":false}]}}`, `{"stream":true,"stream_options":{"x":[1,{"include_usage":false}],"include_usage":true}}`, true, ""},
		{`{"stream":true,"stream_options":null}`, `{"stream":true,` + on + `}`, true, ""},
		{`{"stream_options":null,"stream":true}`, `{` + on + `,"stream":true}`, true, `{"stream_options":null,"stream":true}`},
		{`{"\u0073tream":true}`, `{"\u0073tream":true,` + on + `}`, true, ""},
		{`{"stream\u005foptions":{"include\u005Fusage":null},"stream":true}`, `{"stream\u005foptions":{"include\u005Fusage":true},"stream":true}`, true, ""},
		{`{"stre\"am":true}`, `{"stre\"am":true}`, false, ""},
		{`[{"stream":true}]`, `[{"stream":true}]`, false, ""},
		{`{"a":{"stream":true}}`, `{"a":{"stream":true}}`, false, ""},
		{`{"messages":[{"content":"\"stream\": true"}]}`, `{"messages":[{"content":"\"stream\": true"}]}`, false, ""},
		{`{"stream":true,"stream":false}`, `{"stream":true,"stream":false}`, false, ""},
		{`{"stream":false,"stream_options":{}}`, `{"stream":false,"stream_options":{}}`, false, ""},
		// streamed, stream_options before "stream": edited on the chance it streams
		{`{"stream_options":{},"stream":false}`, `{"stream_options":{},"stream":false}`, false, `{"stream_options":{"include_usage":true},"stream":false}`},
		{`{"stream":true,"stream_options":{"include_usage":false,"include_usage":true}}`, `{"stream":true,"stream_options":{"include_usage":true ,"include_usage":true}}`, false, ""},
		{`{"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, `{"stream":true,"stream_options":{"include_usage":true,"include_usage":true }}`, true, ""},
		// not JSON: left as it is
		{`{"stream":true,"stream_options":{"include_usage":fals}}`, `{"stream":true,"stream_options":{"include_usage":fals}}`, false, ""},
		{`{"stream":true,"stream_options":{"include_usage":nul`, `{"stream":true,"stream_options":{"include_usage":nul`, false, ""},
		{`{"stream":true,"stream_options":nulx}`, `{"stream":true,"stream_options":nulx}`, false, ""},
		{`{"stream":true` + strings.Repeat(`,"a":[`, 70) + strings.Repeat(`]`, 70) + `}`, `{"stream":true` + strings.Repeat(`,"a":[`, 70) + strings.Repeat(`]`, 70) + `}`, false, ""},
		{`{"stream":true} x`, `{"stream":true,` + on + `} x`, true, ""},
	} {
		streamed := tc.streamed
		if streamed == "" {
			streamed = tc.want
		}
		if got, asked := ask(tc.in, 0); got != tc.want || asked != tc.asked {
			t.Errorf("%.80q in memory: got %.120q asked %v, want %.120q %v", tc.in, got, asked, tc.want, tc.asked)
		}
		for _, n := range []int{1, 2, 3, 7, 64, len(tc.in)} {
			if got, _ := ask(tc.in, n); got != streamed {
				t.Errorf("%.80q streamed in pieces of %d: got %.120q, want %.120q", tc.in, n, got, streamed)
			}
		}
	}
}

// FuzzUsageAsk: a JSON object stays valid JSON with every other member as it was; what is
// edited asks for usage, and only when the request streams (or already had stream_options);
// how the body is cut into pieces never changes the result.
func FuzzUsageAsk(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true}`, `{"stream" :true,"stream_options":{"include_usage":false}}`,
		`{"a":"\"stream\":true"}`, `[]`, `{"\u0073tream":true,"stream_options":null}`, `{"stream_options":{"x":1},"stream":true}`} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, n uint8) {
		whole, asked := ask(string(in), 0)
		streamed, _ := ask(string(in), len(in)+1)
		if cut, _ := ask(string(in), int(n)+1); cut != streamed {
			t.Fatalf("in pieces of %d: %q, whole: %q", n+1, cut, streamed)
		}
		var a map[string]any
		if json.Unmarshal(in, &a) != nil {
			return
		}
		for mode, out := range map[string]string{"in memory": whole, "streamed": streamed} {
			if out == string(in) {
				continue
			}
			var b map[string]any
			if err := json.Unmarshal([]byte(out), &b); err != nil {
				t.Fatalf("%s: %q became invalid: %q: %v", mode, in, out, err)
			}
			so, _ := b["stream_options"].(map[string]any)
			if so == nil || so["include_usage"] != true {
				t.Fatalf("%s: %q: changed, but no include_usage in %q", mode, in, out)
			}
			_, hadSO := a["stream_options"].(map[string]any)
			if a["stream"] != true && (mode == "in memory" || !hadSO) {
				t.Fatalf("%s: %q does not ask for a stream but became %q", mode, in, out)
			}
			delete(a, "stream_options")
			delete(b, "stream_options")
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: %q: other members changed: %q", mode, in, out)
			}
		}
		if asked && whole == string(in) {
			t.Fatalf("asked without an edit: %q", in)
		}
	})
}

const (
	evA     = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
	evUsage = "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
	evDone  = "data: [DONE]\n\n"
)

// strip runs in through usageStrip, the provider's writes cut every n bytes.
func strip(t *testing.T, in string, n int) string {
	t.Helper()
	var r io.Reader = strings.NewReader(in)
	if n > 0 {
		r = &chunked{s: in, n: n}
	}
	s := &usageStrip{r: io.NopCloser(r)}
	out, err := io.ReadAll(iotest.OneByteReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	k := min(c.n, len(c.s), len(p))
	copy(p, c.s[:k])
	c.s = c.s[k:]
	return k, nil
}

func TestUsageStrip(t *testing.T) {
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	cr := func(s string) string { return strings.ReplaceAll(s, "\n", "\r") }
	for _, tc := range []struct{ name, in, want string }{
		{"usage chunk dropped", evA + evA + evUsage + evDone, evA + evA + evDone},
		{"CRLF", crlf(evA + evUsage + evDone), crlf(evA + evDone)},
		{"CR", cr(evA + evUsage + evDone), cr(evA + evDone)},
		{"no usage chunk", evA + evDone, evA + evDone},
		{"only the first is dropped", evA + evUsage + evUsage + evDone, evA + evUsage + evDone},
		{"usage with choices stays", "data: {\"choices\":[{}],\"usage\":{}}\n\n" + evDone, "data: {\"choices\":[{}],\"usage\":{}}\n\n" + evDone},
		{"comments and fields", ": keepalive\n\nevent: x\n" + evA + evUsage, ": keepalive\n\nevent: x\n" + evA},
		{"cut mid-event", evA + "data: {\"choi", evA + "data: {\"choi"},
		// Past an event too long to hold, everything passes as it comes, a usage chunk too.
		// "usage":null, which asking for usage adds to every chunk, goes with its comma.
		{"usage null removed", "data: {\"id\":1,\"usage\":null}\n\n" + "data: {\"usage\":null,\"id\":2}\n\n" + evUsage + evDone,
			"data: {\"id\":1}\n\n" + "data: {\"id\":2}\n\n" + evDone},
		{"usage null twice", "data: {\"a\":{\"b\":1,\"usage\":null},\"usage\":null}\n\n", "data: {\"a\":{\"b\":1}}\n\n"},
		{"usage null not a member", "data: {\"\\\"usage\":null,\"s\":\"x\\\"usage\\\":null\",\"usage\":null }\n\n", "data: {\"\\\"usage\":null,\"s\":\"x\\\"usage\\\":null\" }\n\n"},
		{"after the usage chunk nothing is changed", evUsage + "data: {\"id\":3,\"usage\":null}\n\n", "data: {\"id\":3,\"usage\":null}\n\n"},
		{"long event passes", "data: " + strings.Repeat("x", maxHeldEvent+10) + "\n\n" + evUsage, "data: " + strings.Repeat("x", maxHeldEvent+10) + "\n\n" + evUsage},
		{"empty", "", ""},
	} {
		for _, n := range []int{0, 1, 2, 3, 7, 64, 4096} {
			if got := strip(t, tc.in, n); got != tc.want {
				t.Errorf("%s, cut every %d: got %.200q, want %.200q", tc.name, n, got, tc.want)
			}
		}
	}
}

// An event is held only until its blank line: the device gets it before the next one exists.
func TestUsageStripDoesNotHoldWholeEvents(t *testing.T) {
	pr, pw := io.Pipe()
	s := &usageStrip{r: pr}
	go func() { _, _ = pw.Write([]byte(evA)) }() // and nothing more for now
	buf := make([]byte, 1024)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != evA {
		t.Fatalf("first event: %q, %v", buf[:n], err)
	}
	pw.Close()
}

// FuzzUsageStrip: however the stream is cut, the device gets the same bytes, and a stream
// without the usage chunk passes unchanged.
func FuzzUsageStrip(f *testing.F) {
	f.Add([]byte(evA+evUsage+evDone), uint8(3))
	f.Add([]byte("data: a\r\n\r\ndata: {\"choices\":[],\"usage\":1}\r\r"), uint8(1))
	f.Add([]byte("data: {\"x\":1,\"usage\":null}\n\ndata: {\"usage\":null,\"y\":{}}\n\n"+evUsage), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, n uint8) {
		whole := strip(t, string(in), 0)
		if cut := strip(t, string(in), int(n)+1); cut != whole {
			t.Fatalf("cut every %d: %q, whole: %q", n+1, cut, whole)
		}
		if !bytes.Contains(in, emptyChoices) && !bytes.Contains(in, usageNull) && whole != string(in) {
			t.Fatalf("changed a stream without a usage chunk or \"usage\":null: %q -> %q", in, whole)
		}
		if len(whole) > len(in) {
			t.Fatalf("grew: %q -> %q", in, whole)
		}
	})
}

// TestStreamUsageWhateverTheDeviceSent: a streamed chat completion counts its tokens however
// the device wrote its request (a body past 16 KiB, sent with a length or chunked,
// stream_options {} or include_usage false or null, keys with escapes), and the device gets
// exactly the stream it asked for: byte for byte what the provider sends for its own request.
func TestStreamUsageWhateverTheDeviceSent(t *testing.T) {
	overTLSAndPlain(t, func(t *testing.T, url func(*upstream) string) {
		up := startUpstream(t, keyOpenAI)
		e := startGateway(t, mainSection("max_body", "1M")+provider("openai", url(up), keyOpenAI, "bearer", "stream_usage", "1"))
		direct := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustCA(t).Pool()}}}
		long := strings.Repeat("lorem ipsum \"dolor\" sit amet, \\u00e9 ", 20<<10/36) // 20 KiB of history
		msgs := `"messages":[{"role":"user","content":"` + strings.ReplaceAll(long, `"`, `\"`) + `"}]`
		inTok, outTok := up.Usage()
		for _, tc := range []struct {
			name, body string
			chunked    bool
			wantUsage  bool // the device asked for the usage chunk itself
		}{
			{"small, no stream_options", `{"model":"m","stream":true,"messages":[]}`, false, false},
			{"20 KiB, no stream_options", `{"model":"m",` + msgs + `,"stream":true}`, false, false},
			{"20 KiB chunked, no stream_options", `{"model":"m",` + msgs + `,"stream":true}`, true, false},
			{"stream_options {}", `{"model":"m","stream":true,"stream_options":{},"messages":[]}`, false, false},
			{"include_usage false", `{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[]}`, false, false},
			{"include_usage null, spaced", `{"model":"m", "stream" : true, "stream_options": { "include_usage" : null } }`, false, false},
			{"stream_options null", `{"model":"m","stream":true,"stream_options":null,"messages":[]}`, false, false},
			{"other stream_options", `{"model":"m","stream_options":{"x":1},"stream":true}`, false, false},
			{"escaped keys", `{"model":"m","\u0073tream":true,"stream\u005foptions":{"include\u005Fusage":false}}`, false, false},
			{"20 KiB, stream_options {} before stream", `{"model":"m","stream_options":{},` + msgs + `,"stream":true}`, false, false},
			{"20 KiB chunked, include_usage false", `{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":false}}`, true, false},
			{"device asks itself", `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, false, true},
			{"20 KiB, device asks itself", `{"model":"m",` + msgs + `,"stream_options":{"include_usage":true},"stream":true}`, false, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if !json.Valid([]byte(tc.body)) {
					t.Fatalf("test body is not JSON: %.100q", tc.body)
				}
				// What the provider sends for the device's own request, without the gateway.
				req, _ := http.NewRequest("POST", up.URL()+"/v1/chat/completions", strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer "+keyOpenAI)
				res, err := direct.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := io.ReadAll(res.Body)
				res.Body.Close()
				nextArrival(t, up)
				if strings.Contains(string(want), `"usage":{`) != tc.wantUsage {
					t.Fatalf("the fake's own answer: usage %v, want %v", !tc.wantUsage, tc.wantUsage)
				}

				before := e.values("openai")
				var rd io.Reader = strings.NewReader(tc.body)
				if tc.chunked {
					rd = io.MultiReader(rd) // no length: the client sends it chunked
				}
				req, _ = http.NewRequest("POST", e.base+"/openai/v1/chat/completions", rd)
				req.Header.Set("Authorization", "Bearer sk-placeholder")
				res, err = e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || string(got) != string(want) {
					t.Errorf("the device got (%d):\n%s\nwant what the provider sends for its request:\n%s", res.StatusCode, got, want)
				}
				rec := nextArrival(t, up)
				var sent map[string]any
				if err := json.Unmarshal(rec.Body, &sent); err != nil {
					t.Fatalf("the provider got no JSON: %v: %.200q", err, rec.Body)
				}
				if so, _ := sent["stream_options"].(map[string]any); so == nil || so["include_usage"] != true {
					t.Errorf("the provider was not asked for usage: stream_options %v", sent["stream_options"])
				}
				var orig map[string]any
				json.Unmarshal([]byte(tc.body), &orig)
				for k, v := range orig {
					if k != "stream_options" && !reflect.DeepEqual(sent[k], v) {
						t.Errorf("%q changed on the way: %.100v", k, sent[k])
					}
				}
				e.idle()
				v := e.values("openai")
				if v.TokensIn-before.TokensIn != uint64(inTok) || v.TokensOut-before.TokensOut != uint64(outTok) || v.TokensEstimated != 0 {
					t.Errorf("tokens %d/%d (estimated %d), want %d/%d reported", v.TokensIn-before.TokensIn, v.TokensOut-before.TokensOut, v.TokensEstimated, inTok, outTok)
				}
			})
		}
	})
}

// TestTokensEstimatedWhenUnknown: a stream whose usage is never reported (a provider without
// stream_usage) counts an estimate for a device with a token quota, never zero, and says so in
// status; a device without a quota counts only what providers report.
func TestTokensEstimatedWhenUnknown(t *testing.T) {
	up := startUpstream(t, keyOpenAI)
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}]}`
	for _, quota := range []bool{true, false} {
		extra := ""
		if quota {
			extra = "\toption default_daily_tokens '100000'\n"
		}
		e := startGateway(t, mainSection()+extra+provider("openai", up.URL(), keyOpenAI, "bearer"))
		res, got := e.do("POST", "/openai/v1/chat/completions", body)
		if res.StatusCode != 200 || strings.Contains(got, `"usage":{`) {
			t.Fatalf("%d %q", res.StatusCode, got)
		}
		e.idle()
		v := e.values("openai")
		switch {
		case quota && (v.TokensEstimated != 1 || v.TokensIn < uint64(len(body))/5 || v.TokensOut == 0):
			t.Errorf("with a quota: tokens %d/%d, estimated %d; want an estimate from %d bytes up, %d events down", v.TokensIn, v.TokensOut, v.TokensEstimated, len(body), len(up.Words())+3)
		case !quota && (v.TokensEstimated != 0 || v.TokensIn|v.TokensOut != 0):
			t.Errorf("without a quota: tokens %d/%d, estimated %d; want nothing", v.TokensIn, v.TokensOut, v.TokensEstimated)
		}
		if quota && !strings.Contains(e.logs.String(), "estimated") {
			t.Errorf("no log line says the tokens were estimated")
		}
	}
}
