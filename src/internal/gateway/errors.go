package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"
)

// apiError is an error the gateway itself answers with, in the OpenAI shape that every SDK
// understands: {"error":{"message":…,"type":…,"code":…}}. Messages never hold a key, a header
// value or a query: only the gateway's own words and provider section names.
type apiError struct {
	status        int
	typ, code     string
	message       string
	countsAsError bool // an upstream failure (stats Errors)
}

var (
	errBadPath = &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invalid_path",
		message: "the path holds a '.' or '..' segment"}
	errBadBody = &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invalid_body",
		message: "the request body could not be read"}
	errDenied = &apiError{status: http.StatusForbidden, typ: "permission_error", code: "access_denied",
		message: "this device may not use this provider through the router"}
	errNoRoute = &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "unknown_provider",
		message: "no provider is configured at this path; use /<prefix>/… with a provider's prefix"}
	errTooLarge = &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
		message: "the request body is larger than the router allows (max_body)"}
)

func upstreamError(p string, status int, what string) *apiError {
	e := &apiError{status: status, typ: "upstream_error", code: "bad_gateway", countsAsError: true,
		message: "provider '" + p + "': " + what}
	if status == http.StatusGatewayTimeout {
		e.code = "upstream_timeout"
	}
	return e
}

// Causes of a cancelled attempt, set by the attempt's timer.
var (
	errFirstByte  = errors.New("no response within first_byte_timeout")
	errStreamIdle = errors.New("no data within stream_idle_timeout")
	// errRetryStatus is ModifyResponse refusing a 429 or 5xx that a fallback may answer better.
	errRetryStatus = errors.New("retryable status")
)

// classify turns an attempt's failure into what the device is told.
func classify(p string, err, cause error, status int) *apiError {
	switch {
	case errors.Is(cause, errFirstByte) || errors.Is(err, errFirstByte):
		return upstreamError(p, http.StatusGatewayTimeout, "no response within first_byte_timeout")
	case errors.Is(err, errRetryStatus):
		return upstreamError(p, http.StatusBadGateway, "answered "+strconv.Itoa(status))
	case isTimeout(err):
		return upstreamError(p, http.StatusGatewayTimeout, "connect timed out")
	}
	return upstreamError(p, http.StatusBadGateway, "unreachable")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// logErr strips the URL from a transport error: a device's query may hold its own key.
func logErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (e *apiError) write(w http.ResponseWriter) {
	b := make([]byte, 0, 96+len(e.message))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, e.message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.typ)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, "}}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	w.Write(b)
}

func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
