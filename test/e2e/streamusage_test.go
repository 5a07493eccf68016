package e2e

import (
	"os"
	"path/filepath"
)

// --- 9. streamed chats count their tokens (issue 23.2) ---

type streamUsageOut struct {
	HistoryBytes int `json:"history_bytes"`
	Streams      map[string]struct {
		Text      string `json:"text"`
		Chunks    int    `json:"chunks"`
		WithUsage int    `json:"with_usage"`
		In, Out   *int
		Error     string `json:"error"`
	} `json:"streams"`
}

// streamUsageScenario: the phone streams chat completions with the official openai SDK through
// the gateway, with a 20 KiB conversation, and with stream_options written as chat apps write
// them ({}, include_usage false, true). Every stream counts its tokens in status (the shipped
// openai section has stream_usage: the gateway asks the provider), none is an estimate, and the
// SDK sees exactly what it asked for: no usage chunk, and no chunk with a usage member, unless
// it asked.
func streamUsageScenario(s *sc) {
	h := s.h
	script, err := os.ReadFile(filepath.Join(h.repo, "test/e2e/node/streamusage.mjs"))
	if err != nil {
		s.fatalf("%v", err)
	}
	if err := os.WriteFile(filepath.Join(h.nodeDir(), "streamusage.mjs"), script, 0o644); err != nil {
		s.fatalf("%v", err)
	}
	before := device(s.status(), phoneAddr).Providers["openai"]
	var o streamUsageOut
	if r := s.node(h.lan, "streamusage.mjs", &o, "E2E_BASE_URL="+gateway+"/openai/v1", "E2E_KEY=sk-placeholder"); !r.ok() {
		s.fatalf("openai SDK streams through the gateway: %s", r)
	}
	asked := o.Streams["usage_true"]
	if o.HistoryBytes < 20<<10 || len(o.Streams) != 4 || asked.In == nil || asked.Out == nil || *asked.In == 0 {
		s.fatalf("the streams: %+v", o)
	}
	for name, st := range o.Streams {
		switch {
		case st.Error != "" || st.Text != fakeText:
			s.errorf("%s: %q %s", name, st.Text, st.Error)
		case name != "usage_true" && (st.WithUsage != 0 || st.Chunks != asked.Chunks-1):
			s.errorf("%s: %d chunks, %d with a usage member; want %d, none (the device did not ask)", name, st.Chunks, st.WithUsage, asked.Chunks-1)
		}
	}
	after := device(s.status(), phoneAddr).Providers["openai"]
	n := uint64(len(o.Streams))
	wantIn, wantOut := n*uint64(*asked.In), n*uint64(*asked.Out)
	gotIn, gotOut := after.TokensIn-before.TokensIn, after.TokensOut-before.TokensOut
	if gotIn != wantIn || gotOut != wantOut || after.Requests-before.Requests != n || after.TokensEstimated != before.TokensEstimated {
		s.fatalf("status for %s/openai: +%d requests, tokens +%d in +%d out (+%d estimated); want +%d, +%d, +%d, none estimated",
			phoneAddr, after.Requests-before.Requests, gotIn, gotOut, after.TokensEstimated-before.TokensEstimated, n, wantIn, wantOut)
	}
	s.prove("openai SDK via the gateway, %d KiB conversation, streams with no stream_options, {}, include_usage false: %d chunks each, none with usage (as asked); with include_usage true: %d chunks, usage %d/%d",
		o.HistoryBytes>>10, asked.Chunks-1, asked.Chunks, *asked.In, *asked.Out)
	s.prove("status: %s openai +%d requests, +%d tokens in, +%d out, none estimated", phoneAddr, n, gotIn, gotOut)
}
