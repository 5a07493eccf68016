package openwrt

import (
	"slices"
	"strings"
	"testing"
)

// nft -a list chain inet fw4 dstnat, as fw4 left it after tls_listen moved from :8443 to :8444
// and fw4 could not load the new fragment (another package's include was broken): airelay's
// old redirect is still live, beside a port forward of the user's.
const liveDstnat = `table inet fw4 {
	chain dstnat { # handle 3
		type nat hook prerouting priority dstnat; policy accept;
		iifname "br-lan" fib daddr type local tcp dport 443 counter packets 12 bytes 720 redirect to :8443 comment "airelay: lan HTTPS to the router -> relay :8443" # handle 41
		iifname "br-lan" jump dstnat_lan comment "!fw4: Handle lan IPv4/IPv6 dstnat traffic" # handle 42
		iifname "wan" tcp dport 2222 counter packets 0 bytes 0 dnat ip to 192.168.1.2:22 comment "ssh forward" # handle 43
	}
}
`

const liveInput = `table inet fw4 {
	chain input { # handle 1
		iifname "br-lan" tcp dport 8443 counter packets 12 bytes 720 accept comment "airelay: lan -> relay :8443" # handle 50
		iifname "br-lan" tcp dport 8080 counter packets 0 bytes 0 accept comment "airelay: lan -> gateway :8080" # handle 51
	}
}
`

func TestParseLive(t *testing.T) {
	got := ParseLive("dstnat", []byte(liveDstnat))
	if len(got) != 1 || got[0] != (LiveRule{"dstnat", 41, "airelay: lan HTTPS to the router -> relay :8443"}) {
		t.Errorf("%+v", got)
	}
}

func TestSync(t *testing.T) {
	moved := Rules{
		DstNAT: []byte(Generated + `iifname "br-lan" fib daddr type local tcp dport 443 counter redirect to :8444 comment "airelay: lan HTTPS to the router -> relay :8444"` + "\n"),
		Input:  []byte(Generated + `iifname "br-lan" tcp dport 8444 counter accept comment "airelay: lan -> relay :8444"` + "\n" + `iifname "br-lan" tcp dport 8080 counter accept comment "airelay: lan -> gateway :8080"` + "\n"),
	}
	live := append(ParseLive("dstnat", []byte(liveDstnat)), ParseLive("input", []byte(liveInput))...)

	// The old redirect points at a port the relay left: it goes, and the state says so.
	cmds, st := Sync(SyncInput{Want: moved, Live: live, FW4Loaded: true})
	if !slices.Equal(cmds, []string{"delete rule inet fw4 dstnat handle 41", "delete rule inet fw4 input handle 50"}) {
		t.Errorf("commands: %q", cmds)
	}
	if st.Active || len(st.Networks) != 1 || st.Networks[0].Active || !strings.Contains(st.Reason, "not redirected on lan") {
		t.Errorf("state: %+v", st)
	}

	// Once fw4 loads the fragment, the state follows.
	live = append(ParseLive("dstnat", []byte(strings.ReplaceAll(liveDstnat, ":8443", ":8444"))), ParseLive("input", []byte(strings.ReplaceAll(liveInput, ":8443", ":8444")))...)
	cmds, st = Sync(SyncInput{Want: moved, Live: live, FW4Loaded: true})
	if len(cmds) != 0 || !st.Active || st.Reason != "HTTPS to the router from lan goes to the SNI relay" {
		t.Errorf("after fw4 loaded the new rules: %q %+v", cmds, st)
	}
	if got := string(st.Bytes()); got != "active\nHTTPS to the router from lan goes to the SNI relay\nnet lan active\n" {
		t.Errorf("state file:\n%s", got)
	}

	// firewall stop: no fw4 table; start again: the rules are back (fw4 runs the include)
	_, st = Sync(SyncInput{Want: moved, FW4Loaded: false})
	if st.Active || !strings.HasPrefix(st.Reason, "the firewall is not running") {
		t.Errorf("firewall stopped: %+v", st)
	}

	// airelay stopped, but fw4 could not reload without its fragments: every airelay rule goes
	cmds, st = Sync(SyncInput{Live: live, FW4Loaded: true})
	if len(cmds) != 3 || st.Active || !strings.HasPrefix(st.Reason, "no redirect in the config") {
		t.Errorf("stopped: %q %+v", cmds, st)
	}

	// fw4 refused the fragments: they were taken away; the reason is fw4's
	_, st = Sync(SyncInput{FW4Loaded: true, Refused: "fw4 refused the rules: Error: syntax error"})
	if st.Active || st.Reason != "fw4 refused the rules: Error: syntax error" {
		t.Errorf("refused: %+v", st)
	}
}
