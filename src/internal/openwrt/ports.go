package openwrt

import (
	"fmt"
	"net"
	"strconv"

	"github.com/airelay/airelay/src/internal/config"
)

// PrivilegedPorts lists, as errors naming section, option and value, every listener of t that
// a daemon running as user could not bind: a port below start when user is not root. procd
// starts airelay as the unprivileged user 'airelay' and, without a jail, applies no
// capabilities, so such a listener would only fail at bind time, in the log.
func PrivilegedPorts(t *config.Table, user string, start int) []error {
	if user == "" || user == "root" {
		return nil
	}
	var errs []error
	for _, l := range [...]struct{ opt, v string }{
		{"dns_listen", t.Main.DNSListen}, {"tls_listen", t.Main.TLSListen},
		{"http_listen", t.Main.HTTPListen}, {"status_listen", t.Main.StatusListen},
	} {
		_, ps, err := net.SplitHostPort(l.v)
		if l.v == "" || err != nil {
			continue
		}
		p, err := strconv.Atoi(ps)
		if err != nil || p == 0 || p >= start {
			continue
		}
		errs = append(errs, &config.Error{File: t.Source, Section: "main", Option: l.opt, Value: l.v,
			Msg: fmt.Sprintf("port %d is below %d, and airelay runs as user '%s', which may not bind it (net.ipv4.ip_unprivileged_port_start); use a port from %d up (the firewall redirects the LAN's port 443 to tls_listen)", p, start, user, start)})
	}
	return errs
}
