// Command floor is the smallest program that uses what airelay must link, each the way airelay
// uses it: a DNS server on github.com/miekg/dns, an HTTPS client (crypto/tls, checked against
// the system's roots), TCP listeners and a copy loop from net, the UCI file through
// github.com/digineo/go-uci, sd_notify through github.com/coreos/go-systemd. Built like the
// daemon (`make size-floor`), its compressed size is the floor under the package target: what
// is left above it is airelay's own code and the rest of the standard library it pulls in
// (bench/PROFILE.md). It is never run by the tests or the bench.
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/digineo/go-uci"
	"github.com/miekg/dns"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: floor UCI-DIR PROVIDER-HOST:PORT")
		os.Exit(2)
	}
	tree := uci.NewTree(os.Args[1])
	if err := tree.LoadConfig("airelay", false); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	v, _ := tree.Get("airelay", "main", "enabled")
	fmt.Println("enabled:", v)
	dns.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 168, 1, 1)})
		}
		_ = w.WriteMsg(m)
	})
	go func() { _ = (&dns.Server{Addr: "127.0.0.1:5353", Net: "udp"}).ListenAndServe() }()
	ln, err := net.Listen("tcp", "127.0.0.1:8443")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := tls.Dial("tcp", os.Args[2], &tls.Config{})
			if err != nil {
				return
			}
			defer up.Close()
			go func() { _, _ = io.Copy(up, c) }()
			_, _ = io.Copy(c, up)
		}()
	}
}
