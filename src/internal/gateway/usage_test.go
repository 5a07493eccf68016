package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airelay/airelay/src/internal/access"
)

func scan(chunks ...string) (in, out uint64) {
	var s usageScanner
	for _, c := range chunks {
		s.Feed([]byte(c))
	}
	return s.Tokens()
}

func TestUsageScanner(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		in, out uint64
	}{
		{"openai chat", `{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":5}}}`, 12, 34},
		{"openai stream usage chunk", "data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":8}}\n\ndata: [DONE]\n\n", 7, 8},
		{"responses completed", "event: response.created\ndata: {\"response\":{\"usage\":null}}\n\nevent: response.completed\ndata: {\"response\":{\"usage\":{\"input_tokens\":100,\"input_tokens_details\":{\"cached_tokens\":3},\"output_tokens\":20,\"output_tokens_details\":{\"reasoning_tokens\":9}}}}\n\n", 100, 20},
		{"anthropic stream cumulative", "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":999,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":15}}\n\n", 25, 15},
		{"gemini cumulative", `data: {"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":1}}` + "\r\n\r\n" + `data: {"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":12,"totalTokenCount":20,"thoughtsTokenCount":50}}`, 8, 12},
		{"pretty json", "{\n  \"usage\": {\n    \"prompt_tokens\" :\n 9,\n    \"completion_tokens\"\t:\t10\n  }\n}", 9, 10},
		{"escaped keys are decoded", `{"usage":{"\u0070rompt_tokens":5,"completion\u005ftokens":6,"\u00e9input_tokens":99,"output\/tokens":98}}`, 5, 6},
		{"a broken escape is no key", "{\"\\u00zzprompt_tokens\":5,\"\\u007\":6,\"output_tokens\":7}", 0, 7},
		{"keys inside strings do not count", `{"content":"say \"prompt_tokens\": 999 and \\\"output_tokens\\\": 5","usage":{"prompt_tokens":1,"completion_tokens":2}}`, 1, 2},
		{"key as a value", `{"a":"prompt_tokens","b":5}`, 0, 0},
		{"suffix of a longer key", `{"cache_read_input_tokens":50,"xoutput_tokens":9}`, 0, 0},
		{"null and strings", `{"prompt_tokens":null,"completion_tokens":"5"}`, 0, 0},
		{"unterminated line recovers", "data: {\"text\":\"broken\n" + `data: {"prompt_tokens":3,"completion_tokens":4}`, 3, 4},
		{"number at the end", `"output_tokens":42`, 0, 42},
		{"huge number capped", `{"prompt_tokens":99999999999999999999999999}`, maxTokens, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if in, out := scan(tc.body); in != tc.in || out != tc.out {
				t.Errorf("whole: %d/%d, want %d/%d", in, out, tc.in, tc.out)
			}
			// Every split, and byte by byte: the scanner keeps its state across chunks.
			for i := range len(tc.body) {
				if in, out := scan(tc.body[:i], tc.body[i:]); in != tc.in || out != tc.out {
					t.Fatalf("split at %d: %d/%d, want %d/%d", i, in, out, tc.in, tc.out)
				}
			}
			var s usageScanner
			for i := range len(tc.body) {
				s.Feed([]byte{tc.body[i]})
			}
			if in, out := s.Tokens(); in != tc.in || out != tc.out {
				t.Errorf("bytewise: %d/%d", in, out)
			}
		})
	}
}

func TestUsageScannerDoesNotAllocate(t *testing.T) {
	body := []byte("event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}},\"text\":\"" +
		strings.Repeat("lorem ipsum \\\" ", 50) + "\"}\n\n")
	var s usageScanner
	if n := testing.AllocsPerRun(100, func() { s = usageScanner{}; s.Feed(body[:40]); s.Feed(body[40:]) }); n != 0 {
		t.Errorf("%v allocations per body", n)
	}
	if in, _ := s.Tokens(); in != 25 {
		t.Errorf("in %d", in)
	}
}

func BenchmarkUsageScanner(b *testing.B) {
	var sb strings.Builder
	for i := range 200 {
		sb.WriteString(`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"word ` + strconv.Itoa(i) + ` \"quoted\""},"finish_reason":null}],"usage":null}` + "\n\n")
	}
	sb.WriteString(`data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":200}}` + "\n\n")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var s usageScanner
		for p := body; len(p) > 0; {
			n := min(len(p), 512)
			s.Feed(p[:n])
			p = p[n:]
		}
	}
}

// refUsage finds the usage keys of a JSON document with encoding/json, the way the scanner
// should: the largest unsigned integer of each side. ok is false when the document holds a key
// of ours whose number the scanner reads differently by design (negative, fraction, exponent,
// past the cap).
func refUsage(data []byte) (in, out uint64, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj, wantKey bool
		key          string
	}
	var stack []frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return in, out, true
		}
		if err != nil {
			return 0, 0, false
		}
		n := len(stack)
		if n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			stack[n-1].key, stack[n-1].wantKey = tok.(string), false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{obj: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim(']'):
			stack = stack[:n-1]
			valueDone()
			continue
		}
		if n > 0 && stack[n-1].obj {
			if input, match := matchKey([]byte(stack[n-1].key)); match {
				if num, isNum := tok.(json.Number); isNum {
					v, err := strconv.ParseUint(string(num), 10, 64)
					if err != nil || v >= maxTokens {
						return 0, 0, false
					}
					if input {
						in = max(in, v)
					} else {
						out = max(out, v)
					}
				}
			}
		}
		valueDone()
	}
}

// FuzzUsageScanner checks that the scanner never panics, that how the bytes are split into
// chunks never changes its answer, and that on valid JSON it agrees with encoding/json.
func FuzzUsageScanner(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"prompt_tokens":12,"completion_tokens":34}}`,
		"event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"usage\":{\"output_tokens\":15}}\n\n",
		`[{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":1}},` + "\r\n" + `{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":12}}]`,
		`{"response":{"usage":{"input_tokens":100,"output_tokens":20}}}`,
		`{"a":"\"prompt_tokens\": 9","prompt_tokens":[1,2],"output_tokens":{"x":3}}`,
		`{"prompt_tokens":1e3,"completion_tokens":-4}`,
		`{"usage":{"\u0070rompt_tokens":5,"completion\u005Ftokens":6,"\ud800prompt_tokens":7}}`,
	} {
		f.Add([]byte(s), uint16(7))
	}
	// Lines that Feed may pass over, and some it may not.
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"usage\":{\"prompt_tokens\":3,\n\"completion_tokens\":4}}\n\n"), uint16(3))
	f.Add([]byte("data: {\"a\":\"\\n\"}\ndata: {\"prompt_t\\u006fkens\":5}\n"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var whole usageScanner
		whole.Feed(data)
		in, out := whole.Tokens()
		var full usageScanner // without Feed's shortcut past what cannot hold usage
		full.feed(data)
		if i, o := full.Tokens(); i != in || o != out {
			t.Fatalf("shortcut %d/%d, byte by byte %d/%d", in, out, i, o)
		}
		var lines usageScanner // a line at a time: Feed's shortcut taken where it may be
		for p := data; len(p) > 0; {
			n := bytes.IndexByte(p, '\n') + 1
			if n == 0 {
				n = len(p)
			}
			lines.Feed(p[:n])
			p = p[n:]
		}
		if i, o := lines.Tokens(); i != in || o != out {
			t.Fatalf("line by line: %d/%d, whole: %d/%d", i, o, in, out)
		}

		k := int(split) % (len(data) + 1)
		var two usageScanner
		two.Feed(data[:k])
		two.Feed(data[k:])
		if i, o := two.Tokens(); i != in || o != out {
			t.Fatalf("split at %d: %d/%d, whole: %d/%d", k, i, o, in, out)
		}
		step := int(split%13) + 1
		var many usageScanner
		for p := data; len(p) > 0; {
			n := min(step, len(p))
			many.Feed(p[:n])
			p = p[n:]
		}
		if i, o := many.Tokens(); i != in || o != out {
			t.Fatalf("chunks of %d: %d/%d, whole: %d/%d", step, i, o, in, out)
		}
		if in > maxTokens || out > maxTokens {
			t.Fatalf("past the cap: %d/%d", in, out)
		}
		if !json.Valid(data) {
			return
		}
		if ri, ro, ok := refUsage(data); ok && (ri != in || ro != out) {
			t.Fatalf("scanner %d/%d, encoding/json %d/%d", in, out, ri, ro)
		}
	})
}

// TestPolicyError: a spent quota is a 429 insufficient_quota that tells the SDKs not to retry
// and when to come back; a closed schedule a 403 saying until when.
func TestPolicyError(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	q := policyError(access.Decision{Reason: access.QuotaTokens, Used: 1050, Limit: 1000, Until: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)}, now)
	got := string(q.appendResponse(nil, false))
	for _, want := range []string{"HTTP/1.1 429 Too Many Requests\r\n", "\r\nRetry-After: 10800\r\nx-should-retry: false\r\n",
		`{"error":{"message":"the daily token quota of 1,000 for this device is used up (1,050 today); it resets at midnight (in 3h0m)","type":"insufficient_quota","code":"daily_token_quota"}}`} {
		if !strings.Contains(got, want) {
			t.Errorf("quota answer lacks %q:\n%s", want, got)
		}
	}
	s := policyError(access.Decision{Reason: access.ScheduleClosed, Until: time.Date(2026, 12, 8, 15, 0, 0, 0, time.UTC)}, now)
	got = string(s.appendResponse(nil, false))
	if !strings.HasPrefix(got, "HTTP/1.1 403 Forbidden\r\n") || !strings.Contains(got, `"message":"AI access for this device is closed by its schedule until Tue 15:00 (in 18h0m)","type":"permission_error","code":"schedule_closed"`) {
		t.Errorf("schedule answer:\n%s", got)
	}
}
