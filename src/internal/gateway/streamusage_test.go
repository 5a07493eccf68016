package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWithStreamUsage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{" \n{ \"stream\" : true, \"model\":\"m\"}", " \n{\"stream_options\":{\"include_usage\":true}, \"stream\" : true, \"model\":\"m\"}"},
		{`{"messages":[{"content":"say \"stream\": true"}],"stream":true}`, `{"stream_options":{"include_usage":true},"messages":[{"content":"say \"stream\": true"}],"stream":true}`},
		{`{"model":"m","stream":false}`, ""},
		{`{"model":"m"}`, ""},
		{`{"model":"m","stream":true,"stream_options":{"include_usage":false}}`, ""},
		{`{"stream":true,"stream_options":null}`, ""},
		{`[{"stream":true}]`, ""},
		{`{"content":"stream","x":1}`, ""},
		{`{"messages":[{"content":"\"stream\": true"}]}`, ""}, // escaped: inside a string
	} {
		got := withStreamUsage([]byte(tc.in))
		if string(got) != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzWithStreamUsage: whatever it changes stays valid JSON, with include_usage set and
// everything else as it was.
func FuzzWithStreamUsage(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true}`, `{"stream" :true,"messages":[]}`, `{"a":"\"stream\":true"}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := withStreamUsage(in)
		if out == nil || !json.Valid(in) {
			return
		}
		var a, b map[string]any
		if err := json.Unmarshal(in, &a); err != nil {
			return // valid JSON but not an object: must not have been changed
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("%q became invalid: %q: %v", in, out, err)
		}
		so, _ := b["stream_options"].(map[string]any)
		if so == nil || so["include_usage"] != true {
			t.Fatalf("%q: no include_usage in %q", in, out)
		}
		if _, had := a["stream_options"]; had {
			t.Fatalf("%q already had stream_options", in)
		}
		delete(b, "stream_options")
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%q: other keys changed: %q", in, out)
		}
		if a["stream"] != true {
			t.Fatalf("%q does not ask for a stream", in)
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
	f.Fuzz(func(t *testing.T, in []byte, n uint8) {
		whole := strip(t, string(in), 0)
		if cut := strip(t, string(in), int(n)+1); cut != whole {
			t.Fatalf("cut every %d: %q, whole: %q", n+1, cut, whole)
		}
		if !bytes.Contains(in, emptyChoices) && whole != string(in) {
			t.Fatalf("changed a stream without a usage chunk: %q -> %q", in, whole)
		}
		if len(whole) > len(in) {
			t.Fatalf("grew: %q -> %q", in, whole)
		}
	})
}
