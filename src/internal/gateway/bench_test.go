package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/airelay/airelay/src/internal/h1"
)

// The Raw benchmarks count the gateway's own work per request: the device and the provider are
// plain sockets writing fixed bytes and parsing with h1 (no allocation of their own), so
// allocs/op is the gateway's. BenchmarkGatewayJSON counts the client's and the fake's too.
//
//	go test -run '^$' -bench Raw -benchmem ./src/internal/gateway

// rawProvider answers every request on a plain-TCP listener with the fixed bytes answer(req).
func rawProvider(b *testing.B, answer func(body []byte) []byte) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 64<<10)
				var r h1.Request
				var ch h1.Chunked
				body := make([]byte, 0, 64<<10)
				for {
					head, err := readRawHead(br, func(p []byte) (int, error) { return h1.ParseRequest(p, &r) })
					if err != nil {
						return
					}
					_ = head
					body = body[:0]
					if r.Chunked {
						ch = h1.Chunked{}
						for !ch.Done() {
							p, _ := br.Peek(1)
							if len(p) == 0 {
								return
							}
							p, _ = br.Peek(br.Buffered())
							used, data, _, err := ch.Next(p)
							if err != nil {
								return
							}
							body = append(body, data...)
							br.Discard(used)
						}
					} else if r.ContentLength > 0 {
						n := int(r.ContentLength)
						if cap(body) < n {
							body = make([]byte, 0, n)
						}
						body = body[:n]
						if _, err := io.ReadFull(br, body); err != nil {
							return
						}
					}
					if _, err := c.Write(answer(body)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRawHead reads from br until parse finds a whole head, and consumes it.
func readRawHead(br *bufio.Reader, parse func([]byte) (int, error)) (int, error) {
	for {
		p, _ := br.Peek(br.Buffered())
		if len(p) > 0 {
			n, err := parse(p)
			if err != nil {
				return 0, err
			}
			if n > 0 {
				br.Discard(n)
				return n, nil
			}
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return 0, err
		}
	}
}

// rawDevice sends req on one kept-alive connection and reads each whole answer.
type rawDevice struct {
	c   net.Conn
	br  *bufio.Reader
	res h1.Response
	ch  h1.Chunked
}

func dialRaw(b *testing.B, base string) *rawDevice {
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return &rawDevice{c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

// roundTrip returns the answer's status and how many body bytes came.
func (d *rawDevice) roundTrip(req []byte) (int, int, error) {
	if _, err := d.c.Write(req); err != nil {
		return 0, 0, err
	}
	if _, err := readRawHead(d.br, func(p []byte) (int, error) { return h1.ParseResponse(p, &d.res) }); err != nil {
		return 0, 0, err
	}
	n := 0
	if d.res.Chunked {
		d.ch = h1.Chunked{}
		for !d.ch.Done() {
			if _, err := d.br.Peek(1); err != nil {
				return 0, 0, err
			}
			p, _ := d.br.Peek(d.br.Buffered())
			used, data, _, err := d.ch.Next(p)
			if err != nil {
				return 0, 0, err
			}
			n += len(data)
			d.br.Discard(used)
		}
	} else {
		m, err := d.br.Discard(int(d.res.ContentLength))
		n += m
		if err != nil {
			return 0, 0, err
		}
	}
	return d.res.Status, n, nil
}

func rawRequest(path, body string) []byte {
	return []byte("POST " + path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-placeholder\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

const rawJSONAnswer = `{"id":"chatcmpl-x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`

func fixedAnswer(head, body string) []byte {
	return []byte(head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// sseAnswer is a chunked event stream of n content chunks, with the usage chunk when usage.
func sseAnswer(n int, usage bool) []byte {
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	ev := func(s string) {
		sb.WriteString(strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n")
	}
	tail := ""
	if usage {
		tail = `,"usage":null`
	}
	for i := range n {
		ev(`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"word` + strconv.Itoa(i) + ` "},"finish_reason":null}]` + tail + "}\n\n")
	}
	if usage {
		ev(`data: {"id":"chatcmpl-x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":20,"total_tokens":29}}` + "\n\n")
	}
	ev("data: [DONE]\n\n")
	sb.WriteString("0\r\n\r\n")
	return []byte(sb.String())
}

func benchRaw(b *testing.B, extra []string, answer func([]byte) []byte, req []byte) {
	up := rawProvider(b, answer)
	e := startGateway(b, mainSection()+provider("openai", up, keyOpenAI, "bearer", extra...), quiet)
	d := dialRaw(b, e.base)
	if st, _, err := d.roundTrip(req); err != nil || st != 200 {
		b.Fatalf("status %d: %v", st, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, _, err := d.roundTrip(req); err != nil || st != 200 {
			b.Fatalf("status %d: %v", st, err)
		}
	}
}

// BenchmarkRawJSON: a small chat completion, JSON in and out.
func BenchmarkRawJSON(b *testing.B) {
	ans := fixedAnswer("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", rawJSONAnswer)
	benchRaw(b, nil, func([]byte) []byte { return ans }, rawRequest("/openai/v1/chat/completions", chatBody))
}

// BenchmarkRawStream: a streamed chat completion that asks for usage itself (20 chunks).
func BenchmarkRawStream(b *testing.B) {
	ans := sseAnswer(20, true)
	benchRaw(b, nil, func([]byte) []byte { return ans }, rawRequest("/openai/v1/chat/completions", chatStream))
}

// BenchmarkRawStreamUsage: a streamed chat completion without stream_options to a provider
// with stream_usage: the gateway asks for usage and strips it from the answer.
func BenchmarkRawStreamUsage(b *testing.B) {
	with, without := sseAnswer(20, true), sseAnswer(20, false)
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	benchRaw(b, []string{"stream_usage", "1"}, func(req []byte) []byte {
		if bytes.Contains(req, []byte(`"include_usage":true`)) {
			return with
		}
		return without
	}, rawRequest("/openai/v1/chat/completions", body))
}

// BenchmarkRawStreamUsage20K: the same with a 20 KiB conversation, which streams upstream.
func BenchmarkRawStreamUsage20K(b *testing.B) {
	with, without := sseAnswer(20, true), sseAnswer(20, false)
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum dolor sit amet ", 20<<10/27) + `"}],"stream":true}`
	benchRaw(b, []string{"stream_usage", "1", "max_body", "1M"}, func(req []byte) []byte {
		if bytes.Contains(req, []byte(`"include_usage":true`)) {
			return with
		}
		return without
	}, rawRequest("/openai/v1/chat/completions", body))
}
