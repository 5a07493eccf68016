package egress

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// names maps what a client asked a test proxy for to a real loopback address, so the test can
// see that names reach the proxy unresolved.
type names map[string]string

func (n names) dial(target string) (net.Conn, error) {
	if real, ok := n[target]; ok {
		target = real
	}
	return net.Dial("tcp", target)
}

// relayAfter writes reply and the target's banner in one write (so a client that over-reads
// the reply would swallow the banner), then copies both ways.
func relayAfter(client net.Conn, target net.Conn, reply []byte) {
	defer target.Close()
	b := make([]byte, len(banner))
	if _, err := io.ReadFull(target, b); err != nil {
		return
	}
	client.Write(append(reply, b...))
	go func() {
		io.Copy(target, client)
		target.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(client, target)
}

// socksServer is a minimal RFC 1928/1929 server.
type socksServer struct {
	user, pass string // required when user != ""
	methodFF   bool   // answer "no acceptable methods"
	rep        byte   // non-zero: fail the CONNECT with this code
	names      names

	mu   sync.Mutex
	asks []string // "atyp host:port" per CONNECT
}

func (s *socksServer) handle(c net.Conn) {
	r := bufio.NewReader(c) // the client waits for each reply, so buffering cannot over-read
	b := make([]byte, 262)
	if _, err := io.ReadFull(r, b[:2]); err != nil || b[0] != 5 {
		return
	}
	methods := b[2 : 2+b[1]]
	if _, err := io.ReadFull(r, methods); err != nil {
		return
	}
	want := byte(0)
	if s.user != "" {
		want = 2
	}
	if s.methodFF || !strings.Contains(string(methods), string([]byte{want})) {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		if _, err := io.ReadFull(r, b[:2]); err != nil {
			return
		}
		u := make([]byte, b[1])
		io.ReadFull(r, u)
		io.ReadFull(r, b[:1])
		p := make([]byte, b[0])
		io.ReadFull(r, p)
		if string(u) != s.user || string(p) != s.pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	if _, err := io.ReadFull(r, b[:4]); err != nil || b[1] != 1 {
		return
	}
	atyp := b[3]
	var host string
	switch atyp {
	case 1, 4:
		n := 4
		if atyp == 4 {
			n = 16
		}
		io.ReadFull(r, b[:n])
		ip, _ := netip.AddrFromSlice(b[:n])
		host = ip.String()
	case 3:
		io.ReadFull(r, b[:1])
		n := int(b[0])
		io.ReadFull(r, b[:n])
		host = string(b[:n])
	default:
		return
	}
	io.ReadFull(r, b[:2])
	target := net.JoinHostPort(host, strconv.Itoa(int(b[0])<<8|int(b[1])))
	s.mu.Lock()
	s.asks = append(s.asks, strconv.Itoa(int(atyp))+" "+target)
	s.mu.Unlock()
	if s.rep != 0 {
		c.Write([]byte{5, s.rep, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	tc, err := s.names.dial(target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	// Bound address as a name, the longest reply shape.
	relayAfter(c, tc, []byte{5, 0, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x1f, 0x90})
}

func TestSOCKS5(t *testing.T) {
	target := echoTarget(t)
	_, port, _ := net.SplitHostPort(target)
	name := net.JoinHostPort("api.example.com", port)
	for _, tc := range []struct {
		name    string
		srv     *socksServer
		spec    Spec
		addr    string
		ask     string // what the proxy must have been asked
		wantErr string
	}{
		{name: "no auth, name sent as name", addr: name, ask: "3 " + name},
		{name: "ipv4 literal", addr: target, ask: "1 " + target},
		{name: "ipv6 literal", addr: "[::1]:" + port, ask: "4 [::1]:" + port,
			srv: &socksServer{names: names{"[::1]:" + port: target}}},
		{name: "user/pass", srv: &socksServer{user: "alice", pass: "s3cret"},
			spec: Spec{User: "alice", Pass: "s3cret"}, addr: name, ask: "3 " + name},
		{name: "user/pass offered, proxy wants none", spec: Spec{User: "alice", Pass: "x"}, addr: name, ask: "3 " + name},
		{name: "wrong password", srv: &socksServer{user: "alice", pass: "s3cret"},
			spec: Spec{User: "alice", Pass: "guess"}, addr: name, wantErr: `proxy rejected user "alice"`},
		{name: "auth needed, none configured", srv: &socksServer{user: "alice", pass: "s3cret"},
			addr: name, wantErr: "proxy wants authentication and no user is configured"},
		{name: "no acceptable method", srv: &socksServer{methodFF: true}, spec: Spec{User: "a", Pass: "b"},
			addr: name, wantErr: "accepts neither no-auth nor user/password"},
		{name: "ruleset", srv: &socksServer{rep: 2}, addr: name, wantErr: "socks5: connection not allowed by ruleset"},
		{name: "refused", srv: &socksServer{rep: 5}, addr: name, wantErr: "socks5: connection refused"},
		{name: "host unreachable", srv: &socksServer{rep: 4}, addr: name, wantErr: "socks5: host unreachable"},
		{name: "unknown code", srv: &socksServer{rep: 0x42}, addr: name, wantErr: "unknown reply code 66"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv
			if srv == nil {
				srv = &socksServer{}
			}
			if srv.names == nil {
				srv.names = names{}
			}
			srv.names[name] = target
			tc.spec.Kind = SOCKS5
			tc.spec.Addr = serve(t, srv.handle)
			d := Dialer{Spec: tc.spec, Resolve: noResolve(t)}
			c, err := d.DialContext(context.Background(), "tcp", tc.addr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.spec.Addr) {
					t.Fatalf("err = %v, want it to name the proxy and contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), tc.spec.Pass) && tc.spec.Pass != "" {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkConn(t, c)
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.asks) != 1 || srv.asks[0] != tc.ask {
				t.Errorf("proxy was asked %q, want [%q]", srv.asks, tc.ask)
			}
		})
	}
}

// connectProxy is a minimal HTTP CONNECT proxy.
type connectProxy struct {
	auth  string // required Proxy-Authorization value when set
	reply string // a canned reply instead of a tunnel
	names names

	mu   sync.Mutex
	asks []string
}

func (p *connectProxy) handle(c net.Conn) {
	req, err := http.ReadRequest(bufio.NewReader(c)) // the client waits for our reply
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	p.mu.Lock()
	p.asks = append(p.asks, req.Host+" "+req.Header.Get("Proxy-Authorization"))
	p.mu.Unlock()
	if p.auth != "" && req.Header.Get("Proxy-Authorization") != p.auth {
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if p.reply != "" {
		io.WriteString(c, p.reply)
		return
	}
	tc, err := p.names.dial(req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	relayAfter(c, tc, []byte("HTTP/1.1 200 Connection established\r\nVia: 1.1 test\r\n\r\n"))
}

func TestConnect(t *testing.T) {
	target := echoTarget(t)
	_, port, _ := net.SplitHostPort(target)
	name := net.JoinHostPort("api.example.com", port)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3:cret"))
	for _, tc := range []struct {
		name    string
		proxy   *connectProxy
		spec    Spec
		addr    string
		ask     string
		wantErr string
	}{
		{name: "no auth, name sent as name", addr: name, ask: name + " "},
		{name: "ipv4 literal", addr: target, ask: target + " "},
		{name: "basic auth", proxy: &connectProxy{auth: basic}, spec: Spec{User: "alice", Pass: "s3:cret"},
			addr: name, ask: name + " " + basic},
		{name: "auth missing", proxy: &connectProxy{auth: basic}, addr: name,
			wantErr: `proxy answered "HTTP/1.1 407 Proxy Authentication Required"`},
		{name: "wrong password", proxy: &connectProxy{auth: basic}, spec: Spec{User: "alice", Pass: "guess"},
			addr: name, wantErr: `"HTTP/1.1 407 Proxy Authentication Required"`},
		{name: "forbidden", proxy: &connectProxy{reply: "HTTP/1.0 403 Forbidden\r\n\r\n"}, addr: name,
			wantErr: `proxy answered "HTTP/1.0 403 Forbidden"`},
		{name: "not http", proxy: &connectProxy{reply: "SSH-2.0-OpenSSH_9.6\r\n\r\n"}, addr: name,
			wantErr: `proxy did not answer HTTP: "SSH-2.0-OpenSSH_9.6"`},
		{name: "closed mid-head", proxy: &connectProxy{reply: "HTTP/1.1 200 OK\r\n"}, addr: name,
			wantErr: "unexpected EOF"},
		{name: "endless head", proxy: &connectProxy{reply: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: y\r\n", 500)},
			addr: name, wantErr: "reply head longer than 4096 bytes"},
		{name: "injection", addr: "evil\r\nX-Injected\r\n:443", wantErr: "not allowed in a request line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.proxy
			if p == nil {
				p = &connectProxy{}
			}
			p.names = names{name: target}
			tc.spec.Kind = Connect
			tc.spec.Addr = serve(t, p.handle)
			d := Dialer{Spec: tc.spec, Resolve: noResolve(t)}
			c, err := d.DialContext(context.Background(), "tcp", tc.addr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.spec.Addr) {
					t.Fatalf("err = %v, want it to name the proxy and contain %q", err, tc.wantErr)
				}
				if tc.spec.Pass != "" && strings.Contains(err.Error(), tc.spec.Pass) {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkConn(t, c)
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.asks) != 1 || p.asks[0] != tc.ask {
				t.Errorf("proxy was asked %q, want [%q]", p.asks, tc.ask)
			}
		})
	}
}

func TestSOCKSReplyErrorNames(t *testing.T) {
	var e error = socksReplyError(3)
	var re socksReplyError
	if !errors.As(e, &re) || re != 3 || e.Error() != "socks5: network unreachable" {
		t.Errorf("socksReplyError(3) = %v", e)
	}
}
