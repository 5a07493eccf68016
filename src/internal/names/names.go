// Package names owns the host names devices gave the router's DHCP servers, so status and
// history can show "kids-tablet" instead of 192.168.1.50:
//
//	n := names.New(names.OpenWrtFiles...) // once
//	name := n.Lookup(addr, mac)           // when status or history is shown, never per request
//
// It reads dnsmasq's lease file (/tmp/dhcp.leases: IPv4 leases by MAC and address, and the
// IPv6 leases dnsmasq writes after its "duid" line) and hosts-format files such as odhcpd's
// /tmp/hosts/odhcpd (address and name). A file is parsed again only when its size or mtime
// changed. Missing files are no names. It must not be called on the hot path, and it decides
// nothing: a name is a label, never an identity.
package names

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// OpenWrtFiles are where OpenWrt's dnsmasq and odhcpd keep their leases.
var OpenWrtFiles = []string{"/tmp/dhcp.leases", "/tmp/hosts/odhcpd"}

// Table is the names from a set of files. It is safe for concurrent use.
type Table struct {
	files []string
	mu    sync.Mutex
	seen  map[string]stamp // what each file looked like when read
	byMAC map[string]string
	byIP  map[netip.Addr]string
}

type stamp struct {
	size int64
	mod  time.Time
}

// New returns a table over files (read at the first Lookup).
func New(files ...string) *Table { return &Table{files: files, seen: map[string]stamp{}} }

// Lookup returns the host name for the device with address addr or MAC mac (either may be
// empty); "" when none is known. The address wins: a MAC may hold several leases.
func (t *Table) Lookup(addr netip.Addr, mac string) string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refresh()
	if n := t.byIP[addr.Unmap()]; n != "" {
		return n
	}
	if hw, err := net.ParseMAC(mac); err == nil {
		return t.byMAC[hw.String()]
	}
	return ""
}

func (t *Table) refresh() {
	changed := t.byIP == nil
	for _, f := range t.files {
		var s stamp
		if st, err := os.Stat(f); err == nil {
			s = stamp{st.Size(), st.ModTime()}
		}
		if t.seen[f] != s {
			changed = true
			t.seen[f] = s
		}
	}
	if !changed {
		return
	}
	t.byMAC, t.byIP = map[string]string{}, map[netip.Addr]string{}
	for _, f := range t.files {
		if b, err := os.ReadFile(f); err == nil {
			Parse(b, t.byMAC, t.byIP)
		}
	}
}

// Parse adds the names in one file's text (a dnsmasq lease file or a hosts file, told apart
// line by line) to byMAC and byIP.
func Parse(b []byte, byMAC map[string]string, byIP map[netip.Addr]string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && isNumber(f[0]):
			// dnsmasq: expiry mac-or-iaid address name [client-id]
			a, err := netip.ParseAddr(f[2])
			name := hostname(f[3])
			if err != nil || name == "" {
				continue
			}
			byIP[a.Unmap()] = name
			if hw, err := net.ParseMAC(f[1]); err == nil && len(hw) == 6 {
				byMAC[hw.String()] = name
			}
		case len(f) >= 2:
			// hosts: address name [aliases]
			a, err := netip.ParseAddr(f[0])
			if name := hostname(f[1]); err == nil && name != "" {
				byIP[a.Unmap()] = name
			}
		}
	}
}

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// hostname keeps a name a device may choose only when it is a plain host name: dnsmasq writes
// "*" for none, and nothing a device sends may inject markup or control bytes into status.
func hostname(s string) string {
	if s == "*" || s == "" || len(s) > 63 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return s
}
