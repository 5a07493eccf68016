//go:build !race

package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWaitingStreamStackShrinks: a stream waiting for its next event uses little enough of its
// goroutine's stack (under a quarter of 8 KiB, the runtime's guard space included) that the
// runtime shrinks the stack to 4 KiB: the frames on it while a stream lasts (Gateway.handle,
// attempt, try, respond, pass or encode, and the device's serve and step under them) keep the
// rest of their work in functions that return first. With 8 KiB a stream, 1000 streams held
// 4 MiB more (the race detector's frames are larger: not run under it).
func TestWaitingStreamStackShrinks(t *testing.T) {
	if c := os.Getenv("AIRELAY_STACK_CHILD"); c != "" {
		stackPerStream(t, c == "stream_usage")
		return
	}
	// Measured in a process of its own: a goroutine that ended keeps its stack for the next
	// one, so stacks of earlier tests would be taken again and the figure would say nothing.
	for _, c := range []string{"passed as framed", "stream_usage"} {
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestWaitingStreamStackShrinks$", "-test.v")
			cmd.Env = append(os.Environ(), "AIRELAY_STACK_CHILD="+c)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			_, rest, ok := strings.Cut(string(out), "stack per waiting stream: ")
			per, err := strconv.Atoi(strings.Fields(rest + " x")[0])
			if !ok || err != nil {
				t.Fatalf("no figure in:\n%s", out)
			}
			t.Logf("%d bytes of stack per waiting stream", per)
			if per < 2<<10 { // a goroutine's stack is 2 KiB at the least: the figure says nothing
				t.Fatalf("%d bytes of stack per waiting stream: not a measurement", per)
			}
			if per > 6<<10 {
				t.Errorf("a waiting stream holds %d bytes of stack: its goroutine's stack did not shrink to 4 KiB", per)
			}
		})
	}
}

// stackPerStream opens streams through the gateway that then wait for their next event, and
// prints the stack memory they added, per stream.
func stackPerStream(t *testing.T, usage bool) {
	var extra []string
	if usage {
		extra = []string{"stream_usage", "1"}
	}
	up := heldSSE(t)
	e := startGateway(t, mainSection("max_conns_per_device", "128")+provider("openai", up, keyOpenAI, "bearer", extra...))
	const n = 100
	before := stackInuse()
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req := fmt.Sprintf("POST /openai/v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		for { // through the first event
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			if strings.HasPrefix(line, "data:") {
				break
			}
		}
	}
	waitParked(t, "gateway.(*exchange).")
	fmt.Printf("stack per waiting stream: %d\n", (stackInuse()-before)/n)
}

// stackInuse is the stack memory in use once the GC has shrunk what it can (it halves a stack
// at most once per cycle).
func stackInuse() int {
	var ms runtime.MemStats
	for range 5 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return int(ms.StackInuse)
}

// heldSSE is a provider that answers every request with an SSE head and one event and then holds
// the connection without a goroutine of its own (so that the only goroutines a stream adds are
// the gateway's); it returns its URL.
func heldSSE(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"18\r\ndata: {\"choices\":[{}]}\n\n\r\n"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				continue
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, answer)
		}
	}()
	return "http://" + ln.Addr().String()
}
