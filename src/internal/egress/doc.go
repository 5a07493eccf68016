// Package egress owns how a connection to a provider leaves the router: directly, bound to one
// interface, through a SOCKS5 proxy or through an HTTP CONNECT proxy. It also owns the address
// policy for names it resolves itself, so that a hostile or mistaken DNS answer cannot turn the
// relay into a loop back to the router or an open proxy into the LAN.
//
// Typical use, once per provider connection:
//
//	spec, err := egress.ParseSpec("socks5://user:pw@192.168.1.2:1080") // at config load
//	d := egress.Dialer{Spec: spec, Timeout: 5 * time.Second, Resolve: resolver.LookupNetIP}
//	c, err := d.DialContext(ctx, "tcp", "api.openai.com:443")
//	// c is a *net.TCPConn, so io.Copy to another *net.TCPConn splices.
//
// It must not read configuration, log, retry across providers, or resolve provider names through
// the system resolver (on the router that resolver answers provider names with our own address).
// Everything it returns is a plain *net.TCPConn: no wrapper sits on the data path.
package egress
