// Package fakeprovider is a stand-in for the OpenAI, Anthropic and Gemini HTTP APIs, for tests,
// the namespace end-to-end tests and benchmarks. It speaks their wire formats (JSON and SSE,
// with real usage fields and each provider's own error shape), accepts only a configured key,
// and has knobs to misbehave: fail with a status, hang before the first byte, pause between
// stream events (or wait for the test to say go), drop the connection mid-stream. It records
// every request, and whether the request's context was cancelled while it was being answered.
//
//	f := fakeprovider.New("sk-router-key")
//	srv := httptest.NewUnstartedServer(f)
//	srv.EnableHTTP2 = true
//	srv.StartTLS()
//
// Routes: OpenAI GET /v1/models, POST /v1/chat/completions and /v1/responses; Anthropic POST
// /v1/messages; Gemini POST /v1beta/models/MODEL:generateContent and :streamGenerateContent
// (?alt=sse for SSE, else a streamed JSON array). It is test tooling: never part of airelay.
package fakeprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is the fake. Set its fields before it serves; they are read, never written, by it.
type Server struct {
	Key          string        // the only key accepted, in the provider's own header; "" accepts any
	Text         string        // the answer; streams send it word by word
	InputTokens  int           // usage reported for the prompt
	OutputTokens int           // usage reported for the answer; 0: one per word
	Status       int           // answer every request with this status, in the provider's error shape
	Hang         bool          // send nothing until the request is cancelled
	Gap          time.Duration // pause before every stream event but the first
	Step         chan struct{} // when set, every stream event but the first waits for a receive
	DropAfter    int           // abort the connection after this many stream events (0: never)

	// Arrivals, when not nil, receives each request's Record as it arrives (dropped when full).
	Arrivals chan *Record

	mu      sync.Mutex
	records []*Record
}

// Record is one request as the fake saw it.
type Record struct {
	Method, Path, Query string
	Host, Proto         string
	Header              http.Header
	Body                []byte
	Cancelled           chan struct{} // closed when the request's context ended before the answer did
	Done                chan struct{} // closed when the answer is complete (or abandoned)
}

// New returns a fake that accepts only key, with a short answer and usage 21 in.
func New(key string) *Server {
	return &Server{
		Key:         key,
		Text:        "Hello from the fake provider, streamed word by word.",
		InputTokens: 21,
		Arrivals:    make(chan *Record, 256),
	}
}

// Records returns the requests seen so far.
func (s *Server) Records() []*Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Record(nil), s.records...)
}

// Words is the answer split as the streams send it.
func (s *Server) Words() []string { return strings.SplitAfter(s.Text, " ") }

// Usage is the token counts every answer reports.
func (s *Server) Usage() (in, out int) {
	out = s.OutputTokens
	if out == 0 {
		out = len(s.Words())
	}
	return s.InputTokens, out
}

type api uint8

const (
	apiNone api = iota
	apiOpenAI
	apiAnthropic
	apiGemini
)

func apiOf(path string) api {
	switch {
	case strings.HasPrefix(path, "/v1beta/"):
		return apiGemini
	case path == "/v1/messages":
		return apiAnthropic
	case strings.HasPrefix(path, "/v1/"):
		return apiOpenAI
	}
	return apiNone
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &Record{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Proto: r.Proto,
		Header: r.Header.Clone(), Cancelled: make(chan struct{}), Done: make(chan struct{})}
	stop := context.AfterFunc(r.Context(), func() { close(rec.Cancelled) })
	defer func() {
		stop()
		close(rec.Done)
	}()
	rec.Body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<20))
	s.mu.Lock()
	s.records = append(s.records, rec)
	s.mu.Unlock()
	if s.Arrivals != nil {
		select {
		case s.Arrivals <- rec:
		default:
		}
	}

	a := apiOf(r.URL.Path)
	if a == apiNone {
		writeError(w, apiOpenAI, http.StatusNotFound, "unknown path "+r.URL.Path)
		return
	}
	if msg := s.checkKey(a, r); msg != "" {
		writeError(w, a, http.StatusUnauthorized, msg)
		return
	}
	if s.Hang {
		<-r.Context().Done()
		return
	}
	if s.Status != 0 {
		writeError(w, a, s.Status, "the fake provider was told to fail")
		return
	}
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if len(rec.Body) > 0 {
		if err := json.Unmarshal(rec.Body, &req); err != nil {
			writeError(w, a, http.StatusBadRequest, "the body is not JSON: "+err.Error())
			return
		}
	}
	if req.Model == "" {
		req.Model = "fake-model"
	}
	switch {
	case a == apiOpenAI && r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		s.models(w)
	case a == apiOpenAI && r.URL.Path == "/v1/chat/completions" && r.Method == http.MethodPost:
		if req.Stream {
			s.chatStream(s.stream(w, r, "text/event-stream"), req.Model, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		} else {
			s.chat(w, req.Model)
		}
	case a == apiOpenAI && r.URL.Path == "/v1/responses" && r.Method == http.MethodPost:
		if req.Stream {
			s.responsesStream(s.stream(w, r, "text/event-stream"), req.Model)
		} else {
			writeJSON(w, s.response(req.Model, "completed", true))
		}
	case a == apiAnthropic && r.Method == http.MethodPost:
		if req.Stream {
			s.messagesStream(s.stream(w, r, "text/event-stream"), req.Model)
		} else {
			s.messages(w, req.Model)
		}
	case a == apiGemini && r.Method == http.MethodPost:
		model, method, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1beta/models/"), ":")
		switch method {
		case "generateContent":
			writeJSON(w, s.geminiChunk(model, s.Text, s.OutputTokensOrWords(), true))
		case "streamGenerateContent":
			ct, sse := "application/json", r.URL.Query().Get("alt") == "sse"
			if sse {
				ct = "text/event-stream"
			}
			s.geminiStream(s.stream(w, r, ct), model, sse)
		default:
			writeError(w, a, http.StatusNotFound, "unknown method "+method)
		}
	default:
		writeError(w, a, http.StatusNotFound, "unknown path "+r.URL.Path)
	}
}

// OutputTokensOrWords is the output token count reported.
func (s *Server) OutputTokensOrWords() int { _, out := s.Usage(); return out }

// checkKey returns why the request's credentials are refused, or "". Exactly one credential,
// in the provider's own place, is accepted: a second one means a gateway let two keys through.
func (s *Server) checkKey(a api, r *http.Request) string {
	bearer := r.Header.Values("Authorization")
	xKey := r.Header.Values("X-Api-Key")
	gKey := r.Header.Values("X-Goog-Api-Key")
	qKey := r.URL.Query()["key"]
	n := len(bearer) + len(xKey) + len(gKey) + len(qKey)
	if n > 1 {
		return "more than one credential was sent"
	}
	if s.Key == "" {
		return ""
	}
	var got string
	switch a {
	case apiOpenAI:
		got = strings.TrimPrefix(strings.Join(bearer, ""), "Bearer ")
	case apiAnthropic:
		got = strings.Join(xKey, "")
	case apiGemini:
		got = strings.Join(gKey, "") + strings.Join(qKey, "")
	}
	if n == 1 && got == s.Key {
		return ""
	}
	return "invalid API key"
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// writeError answers in the provider's own error shape.
func writeError(w http.ResponseWriter, a api, status int, msg string) {
	var v any
	switch a {
	case apiAnthropic:
		typ := map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
			404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}[status]
		if typ == "" {
			typ = "api_error"
		}
		v = obj{"type": "error", "error": obj{"type": typ, "message": msg}}
	case apiGemini:
		st := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
			404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}[status]
		if st == "" {
			st = "INTERNAL"
		}
		v = obj{"error": obj{"code": status, "message": msg, "status": st}}
	default:
		typ, code := "server_error", any(nil)
		switch status {
		case 401:
			typ, code = "invalid_request_error", "invalid_api_key"
		case 429:
			typ, code = "requests", "rate_limit_exceeded"
		case 400, 404:
			typ = "invalid_request_error"
		}
		v = obj{"error": obj{"message": msg, "type": typ, "param": nil, "code": code}}
	}
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

type obj = map[string]any

// streamer writes stream events with the Server's pacing and failure knobs.
type streamer struct {
	s   *Server
	w   http.ResponseWriter
	rc  *http.ResponseController
	ctx context.Context
	n   int
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, contentType string) *streamer {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	return &streamer{s: s, w: w, rc: rc, ctx: r.Context()}
}

// write sends one event and flushes it; false when the request is gone.
func (st *streamer) write(event string) bool {
	if st.n > 0 {
		if st.s.Gap > 0 {
			select {
			case <-time.After(st.s.Gap):
			case <-st.ctx.Done():
				return false
			}
		}
		if st.s.Step != nil {
			select {
			case <-st.s.Step:
			case <-st.ctx.Done():
				return false
			}
		}
	}
	if st.s.DropAfter > 0 && st.n >= st.s.DropAfter {
		panic(http.ErrAbortHandler) // the server cuts the connection (or resets the h2 stream)
	}
	if _, err := io.WriteString(st.w, event); err != nil {
		return false
	}
	st.n++
	return st.rc.Flush() == nil
}

// sse formats one SSE event; name may be empty.
func sse(name string, v any) string {
	var data []byte
	if s, ok := v.(string); ok {
		data = []byte(s)
	} else {
		data, _ = json.Marshal(v)
	}
	if name != "" {
		return "event: " + name + "\ndata: " + string(data) + "\n\n"
	}
	return "data: " + string(data) + "\n\n"
}

const created = 1700000000

func (s *Server) models(w http.ResponseWriter) {
	writeJSON(w, obj{"object": "list", "data": []obj{
		{"id": "fake-model", "object": "model", "created": created, "owned_by": "fakeprovider"},
	}})
}

func (s *Server) openaiUsage() obj {
	in, out := s.Usage()
	return obj{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out,
		"prompt_tokens_details":     obj{"cached_tokens": 0},
		"completion_tokens_details": obj{"reasoning_tokens": 0}}
}

func (s *Server) chat(w http.ResponseWriter, model string) {
	writeJSON(w, obj{"id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
		"choices": []obj{{"index": 0, "message": obj{"role": "assistant", "content": s.Text, "refusal": nil},
			"logprobs": nil, "finish_reason": "stop"}},
		"usage": s.openaiUsage()})
}

func (s *Server) chatStream(st *streamer, model string, includeUsage bool) {
	chunk := func(delta obj, finish any) obj {
		c := obj{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model,
			"choices": []obj{{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
		if includeUsage {
			c["usage"] = nil
		}
		return c
	}
	if !st.write(sse("", chunk(obj{"role": "assistant", "content": ""}, nil))) {
		return
	}
	for _, w := range s.Words() {
		if !st.write(sse("", chunk(obj{"content": w}, nil))) {
			return
		}
	}
	if !st.write(sse("", chunk(obj{}, "stop"))) {
		return
	}
	if includeUsage {
		if !st.write(sse("", obj{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
			"model": model, "choices": []obj{}, "usage": s.openaiUsage()})) {
			return
		}
	}
	st.write(sse("", "[DONE]"))
}

// response is a Responses API response object; usage only when complete.
func (s *Server) response(model, status string, complete bool) obj {
	in, out := s.Usage()
	r := obj{"id": "resp_fake", "object": "response", "created_at": created, "status": status, "model": model,
		"output": []obj{}, "usage": nil}
	if complete {
		r["output"] = []obj{{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
			"content": []obj{{"type": "output_text", "text": s.Text, "annotations": []obj{}}}}}
		r["usage"] = obj{"input_tokens": in, "input_tokens_details": obj{"cached_tokens": 0},
			"output_tokens": out, "output_tokens_details": obj{"reasoning_tokens": 0}, "total_tokens": in + out}
	}
	return r
}

func (s *Server) responsesStream(st *streamer, model string) {
	seq := 0
	ev := func(name string, v obj) bool {
		v["type"], v["sequence_number"] = name, seq
		seq++
		return st.write(sse(name, v))
	}
	if !ev("response.created", obj{"response": s.response(model, "in_progress", false)}) ||
		!ev("response.in_progress", obj{"response": s.response(model, "in_progress", false)}) {
		return
	}
	for _, w := range s.Words() {
		if !ev("response.output_text.delta", obj{"item_id": "msg_fake", "output_index": 0, "content_index": 0, "delta": w}) {
			return
		}
	}
	ev("response.completed", obj{"response": s.response(model, "completed", true)})
}

func (s *Server) messages(w http.ResponseWriter, model string) {
	in, out := s.Usage()
	writeJSON(w, obj{"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
		"content":     []obj{{"type": "text", "text": s.Text}},
		"stop_reason": "end_turn", "stop_sequence": nil,
		"usage": obj{"input_tokens": in, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": out}})
}

func (s *Server) messagesStream(st *streamer, model string) {
	in, out := s.Usage()
	ev := func(name string, v obj) bool {
		v["type"] = name
		return st.write(sse(name, v))
	}
	ok := ev("message_start", obj{"message": obj{"id": "msg_fake", "type": "message", "role": "assistant",
		"content": []obj{}, "model": model, "stop_reason": nil, "stop_sequence": nil,
		"usage": obj{"input_tokens": in, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}}) &&
		ev("content_block_start", obj{"index": 0, "content_block": obj{"type": "text", "text": ""}}) &&
		ev("ping", obj{})
	for _, w := range s.Words() {
		ok = ok && ev("content_block_delta", obj{"index": 0, "delta": obj{"type": "text_delta", "text": w}})
	}
	_ = ok && ev("content_block_stop", obj{"index": 0}) &&
		ev("message_delta", obj{"delta": obj{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": obj{"output_tokens": out}}) &&
		ev("message_stop", obj{})
}

func (s *Server) geminiChunk(model, text string, outSoFar int, last bool) obj {
	in, _ := s.Usage()
	cand := obj{"content": obj{"parts": []obj{{"text": text}}, "role": "model"}, "index": 0}
	if last {
		cand["finishReason"] = "STOP"
	}
	return obj{"candidates": []obj{cand},
		"usageMetadata": obj{"promptTokenCount": in, "candidatesTokenCount": outSoFar, "totalTokenCount": in + outSoFar},
		"modelVersion":  model}
}

// geminiStream sends cumulative usage in every chunk, as Gemini does; the last carries the total.
func (s *Server) geminiStream(st *streamer, model string, sse bool) {
	words := s.Words()
	_, out := s.Usage()
	for i, w := range words {
		b, _ := json.Marshal(s.geminiChunk(model, w, out*(i+1)/len(words), i == len(words)-1))
		var ev string
		switch {
		case sse:
			ev = "data: " + string(b) + "\r\n\r\n"
		case i == 0:
			ev = "[" + string(b)
		default:
			ev = ",\r\n" + string(b)
		}
		if i == len(words)-1 && !sse {
			ev += "]"
		}
		if !st.write(ev) {
			return
		}
	}
}

// String describes the knobs, for logs.
func (s *Server) String() string {
	return fmt.Sprintf("fakeprovider(status=%d hang=%v gap=%v drop_after=%d)", s.Status, s.Hang, s.Gap, s.DropAfter)
}
