package stats

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/airelay/airelay/src/internal/h1"
)

// Get fetches target (a path and its query) from the status listener at addr (host:port): one
// HTTP/1.1 GET on a connection of its own, within timeout. It returns the status and the body
// (de-chunked when the daemon sends it chunked, as older ones did), and an error when the
// daemon cannot be reached, answers something that is not HTTP/1.x, or sends more than
// maxBody bytes.
func Get(addr, target string, timeout time.Duration, maxBody int) (status int, body []byte, err error) {
	deadline := time.Now().Add(timeout)
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: "+addr+"\r\nUser-Agent: airelay\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 0, 16<<10)
	var res h1.Response
	head := 0
	for {
		if len(buf) > 0 {
			if head, err = h1.ParseResponse(buf, &res); err != nil {
				return 0, nil, fmt.Errorf("not an HTTP answer: %v", err)
			}
			if head > 0 && res.Status >= 100 && res.Status < 200 {
				buf = buf[:copy(buf, buf[head:])] // an interim answer (100 Continue): the real one follows
				continue
			}
			if head > 0 {
				break
			}
			if len(buf) >= 64<<10 {
				return 0, nil, errors.New("not an HTTP answer: head too large")
			}
		}
		if buf, err = readMore(c, buf); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	status = res.Status
	chunked, length := res.Chunked, res.ContentLength
	rest := buf[head:]
	if h1.NoBody(status) {
		return status, nil, nil
	}
	if length > int64(maxBody) {
		return status, nil, fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	var ch h1.Chunked
	body = make([]byte, 0, min(max(length, 0), int64(maxBody)))
	for {
		switch {
		case chunked:
			for len(rest) > 0 && !ch.Done() {
				used, data, _, err := ch.Next(rest)
				if err != nil {
					return status, nil, fmt.Errorf("malformed chunked body: %v", err)
				}
				body = append(body, data...)
				rest = rest[used:]
				if len(body) > maxBody {
					return status, nil, fmt.Errorf("answer larger than %d bytes", maxBody)
				}
			}
			if ch.Done() {
				return status, body, nil
			}
		case length >= 0:
			body = append(body, rest[:min(int64(len(rest)), length-int64(len(body)))]...)
			if int64(len(body)) == length {
				return status, body, nil
			}
		default: // delimited by the end of the connection
			body = append(body, rest...)
		}
		if len(body) > maxBody {
			return status, nil, fmt.Errorf("answer larger than %d bytes", maxBody)
		}
		if cap(buf) == 0 {
			buf = make([]byte, 0, 16<<10)
		}
		buf, err = readMore(c, buf[:0])
		rest = buf
		if err == io.EOF && !chunked && length < 0 {
			return status, body, nil
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return status, nil, err
		}
	}
}

// readMore reads once into buf's spare room, growing it when full.
func readMore(c net.Conn, buf []byte) ([]byte, error) {
	if len(buf) == cap(buf) {
		buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
	}
	n, err := c.Read(buf[len(buf):cap(buf)])
	buf = buf[:len(buf)+n]
	if n > 0 {
		return buf, nil
	}
	return buf, err
}
