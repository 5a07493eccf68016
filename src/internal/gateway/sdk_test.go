package gateway

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOfficialSDKs runs the official openai and @anthropic-ai/sdk clients (test/node) against
// the gateway, with placeholder keys, in front of fakes that accept only the router's keys: a
// success proves the key was injected and that the SDKs parse what the gateway streams.
func TestOfficialSDKs(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the official SDK tests need it (.ci/deps installs it)")
	}
	dir, _ := filepath.Abs(filepath.Join("..", "..", "..", "test", "node"))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Skip("test/node/node_modules is missing: run `npm ci --prefix test/node` (.ci/deps does)")
	}
	oa, an := startUpstream(t, keyOpenAI), startUpstream(t, keyAnthropic)
	e := startGateway(t, mainSection()+provider("openai", oa.URL(), keyOpenAI, "bearer", "stream_usage", "1")+
		provider("anthropic", an.URL(), keyAnthropic, "x-api-key"))

	for _, tc := range []struct {
		script, provider string
		up               *upstream
		requests         int
	}{
		{"openai.mjs", "openai", oa, 7},
		{"anthropic.mjs", "anthropic", an, 2},
	} {
		t.Run(tc.script, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join(dir, tc.script))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "AIRELAY_GATEWAY="+e.base)
			var stderr []byte
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s%s", tc.script, err, out, stderr)
			}
			var got struct {
				Models       []string
				JSON, Stream struct {
					Text            string
					In, Out, Chunks int
				}
				// Streams that did not ask for usage (openai.mjs): what the SDK saw.
				Quiet map[string]struct {
					Text      string
					Chunks    int
					WithUsage int `json:"with_usage"`
				}
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s printed %q: %v", tc.script, out, err)
			}
			in, outTok := tc.up.Usage()
			for name, r := range map[string]struct {
				Text            string
				In, Out, Chunks int
			}{"json": got.JSON, "stream": got.Stream} {
				if r.Text != tc.up.Text || r.In != in || r.Out != outTok {
					t.Errorf("%s: text %q usage %d/%d; want %q %d/%d", name, r.Text, r.In, r.Out, tc.up.Text, in, outTok)
				}
			}
			if got.Stream.Chunks < len(tc.up.Words()) {
				t.Errorf("the stream came as %d events, want at least %d", got.Stream.Chunks, len(tc.up.Words()))
			}
			if tc.provider == "openai" && (len(got.Models) != 1 || got.Models[0] != "fake-model") {
				t.Errorf("models %v", got.Models)
			}
			e.idle()
			v := e.values(tc.provider)
			if v.Requests != uint64(tc.requests) || v.Status[2] != uint64(tc.requests) {
				t.Errorf("counters %+v, want %d requests answered 2xx", v, tc.requests)
			}
			// The streams that did not ask for usage get exactly what they asked for: the
			// fake's chunks (role, words, stop), none of them with a usage member.
			for name, q := range got.Quiet {
				if q.Text != tc.up.Text || q.Chunks != len(tc.up.Words())+2 || q.WithUsage != 0 {
					t.Errorf("%s: text %q, %d chunks (%d with usage); want %q, %d chunks, none with usage", name, q.Text, q.Chunks, q.WithUsage, tc.up.Text, len(tc.up.Words())+2)
				}
			}
			if tc.provider == "openai" && len(got.Quiet) != 4 {
				t.Errorf("quiet streams: %v", got.Quiet)
			}
			// The models list carries no usage; each completion reports in/out once, the
			// streams that did not ask for it too (stream_usage).
			completions := uint64(2 + len(got.Quiet))
			if v.TokensIn != completions*uint64(in) || v.TokensOut != completions*uint64(outTok) || v.TokensEstimated != 0 {
				t.Errorf("tokens %d/%d (estimated %d), want %d/%d", v.TokensIn, v.TokensOut, v.TokensEstimated, completions*uint64(in), completions*uint64(outTok))
			}
			for _, r := range tc.up.Records() {
				if ua := r.Header.Get("User-Agent"); ua == "" {
					t.Errorf("the SDK's User-Agent was dropped")
				}
			}
		})
	}
}
