package gateway

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/airelay/airelay/src/internal/access"
	"github.com/airelay/airelay/src/internal/h1"
)

// apiError is an error the gateway itself answers with, in the OpenAI shape that every SDK
// understands: {"error":{"message":…,"type":…,"code":…}}. Messages never hold a key, a header
// value or a query: only the gateway's own words and provider section names.
type apiError struct {
	status        int
	typ, code     string
	message       string
	countsAsError bool // an upstream failure (stats Errors)
	retryAfter    int  // seconds for Retry-After, with x-should-retry: false; 0: neither
	noRetry       bool // x-should-retry: false without a Retry-After
}

var (
	errBadPath = &apiError{status: h1.StatusBadRequest, typ: "invalid_request_error", code: "invalid_path",
		message: "the path holds a '.' or '..' segment"}
	errBadBody = &apiError{status: h1.StatusBadRequest, typ: "invalid_request_error", code: "invalid_body",
		message: "the request body could not be read"}
	errDenied = &apiError{status: h1.StatusForbidden, typ: "permission_error", code: "access_denied",
		message: "this device may not use this provider through the router"}
	errNoRoute = &apiError{status: h1.StatusNotFound, typ: "invalid_request_error", code: "unknown_provider",
		message: "no provider is configured at this path; use /<prefix>/… with a provider's prefix"}
	errHeaderTooLarge = &apiError{status: h1.StatusRequestHeaderFieldsTooLarge, typ: "invalid_request_error", code: "request_header_too_large",
		message: "the request header is larger than the router allows (max_header_bytes)"}
	// errTooManyConns has no Retry-After: the SDKs retry it by themselves, as they should (the
	// device's other connections free up).
	errTooManyConns = &apiError{status: h1.StatusTooManyRequests, typ: "rate_limit_error", code: "too_many_connections",
		message: "this device has max_conns_per_device connections open to the gateway and none of them is idle; close one or try again"}
	errTooLarge = &apiError{status: h1.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
		message: "the request body is larger than the router allows (max_body)"}
	// errDisabled: 503 as for a service that is down, but the SDKs, which retry a 503 by
	// themselves, are told not to: it stays off until someone switches it on.
	errDisabled = &apiError{status: h1.StatusServiceUnavailable, typ: "api_error", code: "disabled", noRetry: true,
		message: "airelay is switched off on the router (option enabled '0'): it relays nothing"}
)

// policyError is the answer to a device its schedule, a daily quota or a broken config stops:
// 403 for a closed schedule, 429 insufficient_quota for a quota, as OpenAI answers a spent
// quota, 403 config_invalid saying where the config is wrong when no valid config serves.
func policyError(d access.Decision, now time.Time) *apiError {
	e := &apiError{status: h1.StatusForbidden, typ: "permission_error", code: d.Code(), message: d.Message(now)}
	if d.Reason == access.ConfigInvalid {
		return e
	}
	if d.Reason != access.ScheduleClosed && d.Reason != access.GatewayOff {
		e.status, e.typ = h1.StatusTooManyRequests, "insufficient_quota"
	}
	if !d.Until.IsZero() {
		e.retryAfter = max(1, int(d.Until.Sub(now).Seconds()))
	}
	return e
}

func upstreamError(p string, status int, what string) *apiError {
	e := &apiError{status: status, typ: "upstream_error", code: "bad_gateway", countsAsError: true,
		message: "provider '" + p + "': " + what}
	if status == h1.StatusGatewayTimeout {
		e.code = "upstream_timeout"
	}
	return e
}

// malformed is the answer to a request head that h1 refused; its reason is h1's own words.
func malformed(e *h1.Error) *apiError {
	code := "invalid_request"
	switch e.Status {
	case h1.StatusRequestHeaderFieldsTooLarge:
		code = "request_header_too_large"
	case h1.StatusHTTPVersionNotSupported:
		code = "http_version_not_supported"
	case h1.StatusExpectationFailed:
		code = "expectation_failed"
	}
	return &apiError{status: e.Status, typ: "invalid_request_error", code: code, message: "malformed request: " + e.Reason}
}

// Causes of a failed attempt, set by the attempt's timer.
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
		return upstreamError(p, h1.StatusGatewayTimeout, "no response within first_byte_timeout")
	case errors.Is(err, errRetryStatus):
		return upstreamError(p, h1.StatusBadGateway, "answered "+strconv.Itoa(status))
	case isTimeout(err):
		return upstreamError(p, h1.StatusGatewayTimeout, "connect timed out")
	}
	return upstreamError(p, h1.StatusBadGateway, "unreachable")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// appendResponse appends the whole answer: head and JSON body; with close, the connection is
// said to close after it.
func (e *apiError) appendResponse(b []byte, close bool) []byte {
	body := len(`{"error":{"message":,"type":,"code":}}`) + 1
	for _, s := range [...]string{e.message, e.typ, e.code} {
		body += jsonLen(s)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = append(b, h1.StatusText(e.status)...)
	b = append(b, "\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(body), 10)
	if close {
		b = append(b, "\r\nConnection: close"...)
	}
	if e.retryAfter > 0 {
		// x-should-retry: the official SDKs retry a 429 by themselves unless told not to;
		// a daily quota or a closed schedule does not pass in seconds.
		b = append(b, "\r\nRetry-After: "...)
		b = strconv.AppendInt(b, int64(e.retryAfter), 10)
	}
	if e.retryAfter > 0 || e.noRetry {
		b = append(b, "\r\nx-should-retry: false"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, e.message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.typ)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, e.code)
	return append(b, "}}\n"...)
}

// jsonLen is the length of s written by appendJSONString.
func jsonLen(s string) int {
	var tmp [128]byte
	return len(appendJSONString(tmp[:0], s))
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

func (e *apiError) Error() string { return e.message }
