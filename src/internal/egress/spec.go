package egress

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Kind is how a provider's connections leave the router.
type Kind uint8

const (
	Direct  Kind = iota // the default route
	Iface               // bound to one interface (SO_BINDTODEVICE)
	SOCKS5              // through a SOCKS5 proxy (RFC 1928, optional RFC 1929 auth)
	Connect             // through an HTTP proxy's CONNECT method
)

func (k Kind) String() string {
	switch k {
	case Iface:
		return "iface"
	case SOCKS5:
		return "socks5"
	case Connect:
		return "http-connect"
	}
	return "direct"
}

// Spec is a parsed egress option: empty, 'iface:NAME' | 'socks5://[user:pass@]host:port' |
// 'http://[user:pass@]host:port'. It is a plain value so that a frozen config can hold it.
type Spec struct {
	Kind  Kind
	Iface string // Kind == Iface
	Addr  string // proxy host:port for SOCKS5 and Connect
	User  string
	Pass  string // never printed; String redacts it
}

// String gives the spec back in config syntax with any password redacted.
func (s Spec) String() string {
	switch s.Kind {
	case Iface:
		return "iface:" + s.Iface
	case SOCKS5, Connect:
		scheme := "socks5"
		if s.Kind == Connect {
			scheme = "http"
		}
		u := url.URL{Scheme: scheme, Host: s.Addr}
		if s.User != "" {
			if s.Pass != "" {
				u.User = url.UserPassword(s.User, "REDACTED")
			} else {
				u.User = url.User(s.User)
			}
		}
		return u.String()
	}
	return ""
}

// ParseSpec validates an egress option value.
func ParseSpec(v string) (Spec, error) {
	if v == "" || v == "direct" {
		return Spec{}, nil
	}
	if name, ok := strings.CutPrefix(v, "iface:"); ok {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t:") {
			return Spec{}, fmt.Errorf("interface name %q is not valid (1-15 characters, no '/', ':' or spaces)", name)
		}
		return Spec{Kind: Iface, Iface: name}, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return Spec{}, errors.New("want '', 'iface:NAME', 'socks5://host:port' or 'http://host:port'")
	}
	var s Spec
	switch u.Scheme {
	case "socks5", "socks5h":
		s.Kind = SOCKS5
	case "http":
		s.Kind = Connect
	default:
		return Spec{}, fmt.Errorf("proxy scheme %q is not supported (socks5 or http)", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return Spec{}, errors.New("a proxy URL takes no path, query or fragment")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return Spec{}, errors.New("the proxy needs host:port")
	}
	s.Addr = u.Host
	if u.User != nil {
		s.User = u.User.Username()
		s.Pass, _ = u.User.Password()
		if len(s.User) > 255 || len(s.Pass) > 255 {
			return Spec{}, errors.New("proxy user name and password are limited to 255 bytes")
		}
	}
	return s, nil
}
