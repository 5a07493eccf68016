package stats

import (
	"encoding/json"
	"net/http"
)

// Handler serves GET /status (JSON) and GET /metrics (Prometheus text) from snapshot, which is
// called once per request. Nothing else is served.
func Handler(snapshot func() *Status) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/status":
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(snapshot())
		case "/metrics":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_ = WriteMetrics(w, snapshot())
		default:
			http.NotFound(w, r)
		}
	})
}
