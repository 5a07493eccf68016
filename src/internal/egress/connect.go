package egress

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// HTTP CONNECT (RFC 9110 §9.3.6): the request names host:port as given, so the proxy resolves
// names. Any 2xx status opens the tunnel.

var errHeadTooLong = fmt.Errorf("reply head longer than %d bytes", bufSize)

// connectHandshake asks the HTTP proxy on rw to open a tunnel to addr. buf is scratch space.
func connectHandshake(rw io.ReadWriter, buf []byte, user, pass, addr string) error {
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("CONNECT: address %q has a byte not allowed in a request line", addr)
		}
	}
	b := append(buf[:0], "CONNECT "...)
	b = append(b, addr...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, addr...)
	b = append(b, "\r\n"...)
	if user != "" {
		const field = "Proxy-Authorization: Basic "
		// user:pass goes in the tail of buf and is encoded from there: no temporary string.
		rawLen := len(user) + 1 + len(pass)
		if len(b)+len(field)+base64.StdEncoding.EncodedLen(rawLen)+4 > len(buf)-rawLen {
			return errors.New("CONNECT: credentials too long")
		}
		b = append(b, field...)
		raw := append(append(append(buf[len(buf)-rawLen:][:0], user...), ':'), pass...)
		b = base64.StdEncoding.AppendEncode(b, raw)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if _, err := rw.Write(b); err != nil {
		return err
	}
	n, err := readHead(rw, buf)
	if err != nil {
		return fmt.Errorf("CONNECT: reading the proxy's reply: %w", err)
	}
	code, line, err := parseStatus(buf[:n])
	if err != nil {
		return fmt.Errorf("CONNECT: %w", err)
	}
	if code < 200 || code > 299 {
		return fmt.Errorf("CONNECT: proxy answered %q", truncate(line, 128))
	}
	return nil
}

// readHead reads an HTTP response head up to and including its blank line and never a byte
// past it: every read asks for no more than the bytes that could still complete "\r\n\r\n", so
// whatever the proxy sends after the head stays in the socket for the caller.
func readHead(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		need := 4 - partialEnd(buf[:n])
		if n+need > len(buf) {
			return n, errHeadTooLong
		}
		m, err := r.Read(buf[n : n+need])
		n += m
		if n >= 4 && string(buf[n-4:n]) == "\r\n\r\n" {
			return n, nil
		}
		if err != nil {
			return n, noEOF(err)
		}
	}
}

// partialEnd is how much of "\r\n\r\n" b already ends with (0 to 3).
func partialEnd(b []byte) int {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n\r")):
		return 3
	case bytes.HasSuffix(b, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(b, []byte("\r")):
		return 1
	}
	return 0
}

// parseStatus reads "HTTP/1.x NNN reason" from the first line of head.
func parseStatus(head []byte) (code int, line []byte, err error) {
	line = head
	if i := bytes.IndexByte(head, '\r'); i >= 0 {
		line = head[:i]
	}
	// HTTP/1.1 200[ reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' ||
		line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, line, fmt.Errorf("proxy did not answer HTTP: %q", truncate(line, 64))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, line, fmt.Errorf("proxy status line has no status code: %q", truncate(line, 64))
		}
		code = code*10 + int(c-'0')
	}
	return code, line, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
