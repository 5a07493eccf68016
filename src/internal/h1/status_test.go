package h1

import (
	"net/http"
	"testing"
)

// StatusText says what net/http says for every code airelay uses, so that devices and SDKs see
// the same status lines as before net/http was dropped from the binary (issue 22).
func TestStatusText(t *testing.T) {
	for _, code := range []int{StatusSwitchingProtocols, StatusOK, StatusBadRequest, StatusForbidden, StatusNotFound,
		StatusMethodNotAllowed, StatusRequestEntityTooLarge, StatusExpectationFailed, StatusTooManyRequests,
		StatusRequestHeaderFieldsTooLarge, StatusInternalServerError, StatusBadGateway, StatusServiceUnavailable,
		StatusGatewayTimeout, StatusHTTPVersionNotSupported} {
		if got, want := StatusText(code), http.StatusText(code); got != want || want == "" {
			t.Errorf("%d: %q, net/http says %q", code, got, want)
		}
	}
	if got := StatusText(599); got != "Status" {
		t.Errorf("599: %q", got)
	}
}
