package openwrt

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
)

// The redirect state follows fw4's live ruleset, not the files airelay wrote. After airelay
// wires the firewall, after every fw4 start or reload (fw4 runs airelay's script include) and
// after airelay stops, the init script lists fw4's dstnat and input chains (nft -a) and hands
// them to Sync with the fragments that should be live. Sync says which of airelay's rules must
// go (a rule no fragment has any more: an old port, a network no longer served, or airelay
// stopped while fw4 could not reload because of another package's include) and what the state
// is for `airelay status`. So a redirect never points at a port nothing listens on for longer
// than it takes fw4 to call the include.

// CommentPrefix starts the comment of every rule airelay generates.
const CommentPrefix = "airelay: "

// LiveRule is one of airelay's rules as nft lists it.
type LiveRule struct {
	Chain   string
	Handle  int
	Comment string
}

// ParseLive finds airelay's rules in the output of `nft -a list chain inet fw4 <chain>`.
func ParseLive(chain string, listing []byte) []LiveRule {
	var out []LiveRule
	for _, l := range strings.Split(string(listing), "\n") {
		c, ok := comment(l)
		if !ok || !strings.HasPrefix(c, CommentPrefix) {
			continue
		}
		_, h, ok := strings.Cut(l, "# handle ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(h))
		if err != nil || n <= 0 {
			continue
		}
		out = append(out, LiveRule{chain, n, c})
	}
	return out
}

// comment returns the text of a rule line's comment "…".
func comment(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, `comment "`)
	if !ok {
		return "", false
	}
	c, _, ok := strings.Cut(rest, `"`)
	return c, ok
}

// comments lists the comments of a fragment's rules.
func comments(frag []byte) []string {
	var out []string
	for _, l := range strings.Split(string(frag), "\n") {
		if c, ok := comment(l); ok {
			out = append(out, c)
		}
	}
	return out
}

// RedirectState is the redirect state the daemon shows (the state file, stats.ParseRedirect).
type RedirectState struct {
	Active   bool
	Reason   string
	Networks []NetState // one per network a redirect was meant for
}

// NetState is one network's redirect.
type NetState struct {
	Name   string
	Active bool
	Reason string
}

// Bytes renders the state file: "active" or "inactive", the reason, then one line per
// network: "net <name> active|inactive <reason>".
func (s RedirectState) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(map[bool]string{true: "active\n", false: "inactive\n"}[s.Active])
	b.WriteString(oneLine(s.Reason) + "\n")
	for _, n := range s.Networks {
		b.WriteString("net " + n.Name + " " + map[bool]string{true: "active", false: "inactive"}[n.Active])
		if n.Reason != "" {
			b.WriteString(" " + oneLine(n.Reason))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// SyncInput is what Sync compares.
type SyncInput struct {
	Want      Rules      // the fragments that should be live; zero when airelay is stopped
	Live      []LiveRule // airelay's rules in the live ruleset
	FW4Loaded bool       // the inet fw4 table exists (the firewall runs)
	// Refused is why the fragments are not installed (fw4 refused them); "" when they are.
	Refused string
}

// Sync returns the nft commands that take stale airelay rules out of the live ruleset, and
// the state once they ran.
func Sync(in SyncInput) (cmds []string, st RedirectState) {
	want := map[string][]string{"dstnat": comments(in.Want.DstNAT), "input": comments(in.Want.Input)}
	live := map[string]bool{}
	for _, r := range in.Live {
		if !slices.Contains(want[r.Chain], r.Comment) {
			cmds = append(cmds, "delete rule inet fw4 "+r.Chain+" handle "+strconv.Itoa(r.Handle))
			continue
		}
		live[r.Chain+"\x00"+r.Comment] = true
	}
	for _, c := range want["dstnat"] {
		name, ok := redirectNetwork(c)
		if !ok {
			continue
		}
		ns := NetState{Name: name, Active: in.FW4Loaded && live["dstnat\x00"+c]}
		switch {
		case ns.Active:
		case !in.FW4Loaded:
			ns.Reason = "the firewall is not running (no inet fw4 table)"
		default:
			ns.Reason = "its redirect is not in fw4's live dstnat chain (fw4 could not reload? see logread)"
		}
		st.Networks = append(st.Networks, ns)
	}
	switch {
	case in.Refused != "":
		st.Reason = in.Refused
	case len(st.Networks) == 0:
		st.Reason = "no redirect in the config (airelay disabled or stopped, tls_listen off or on loopback, already port 443, or no network served)"
	case !in.FW4Loaded:
		st.Reason = "the firewall is not running (no inet fw4 table): HTTPS to the router is not redirected"
	default:
		var off []string
		for _, n := range st.Networks {
			if !n.Active {
				off = append(off, n.Name)
			}
		}
		if len(off) == 0 {
			st.Active = true
			st.Reason = "HTTPS to the router from " + names(st.Networks) + " goes to the SNI relay"
		} else {
			st.Reason = "HTTPS to the router is not redirected on " + strings.Join(off, ", ") + ": the rule is not in fw4's live dstnat chain (fw4 could not reload? see logread)"
		}
	}
	return cmds, st
}

// redirectNetwork reads the network out of a redirect rule's comment (RedirectComment).
func redirectNetwork(c string) (string, bool) {
	rest, ok := strings.CutPrefix(c, CommentPrefix)
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, " HTTPS to the router -> relay :")
	return name, ok && name != ""
}

func names(ns []NetState) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Name
	}
	return strings.Join(s, ", ")
}
