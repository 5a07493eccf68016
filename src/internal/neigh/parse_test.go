package neigh

import (
	"net/netip"
	"reflect"
	"testing"
)

// Builders for hand-made netlink messages, in host byte order like the kernel's.

func nlmsg(typ uint16, payload []byte) []byte {
	b := make([]byte, nlmsgHdrLen, nlmsgHdrLen+len(payload)+3)
	ne.PutUint32(b[0:4], uint32(nlmsgHdrLen+len(payload)))
	ne.PutUint16(b[4:6], typ)
	ne.PutUint16(b[6:8], 0x2) // NLM_F_MULTI
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func rta(typ uint16, v []byte) []byte {
	b := make([]byte, rtaHdrLen, rtaHdrLen+len(v)+3)
	ne.PutUint16(b[0:2], uint16(rtaHdrLen+len(v)))
	ne.PutUint16(b[2:4], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ndmsg(family byte, state uint16, attrs ...[]byte) []byte {
	return ndmsgIf(family, state, 3, attrs...)
}

func ndmsgIf(family byte, state uint16, ifindex uint32, attrs ...[]byte) []byte {
	b := make([]byte, ndmsgLen)
	b[0] = family
	ne.PutUint32(b[4:8], ifindex)
	ne.PutUint16(b[8:10], state)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func ndmsgFlags(family byte, state uint16, flags byte, attrs ...[]byte) []byte {
	b := ndmsg(family, state, attrs...)
	b[10] = flags
	return b
}

func neighMsg(family byte, state uint16, ip string, mac []byte) []byte {
	a := netip.MustParseAddr(ip).AsSlice()
	return nlmsg(rtmNewNeigh, ndmsg(family, state, rta(ndaDst, a), rta(ndaLLAddr, mac)))
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

var (
	mac7 = []byte{2, 0, 0, 0, 0, 7}
	mac8 = []byte{2, 0, 0, 0, 0, 8}
	done = nlmsg(nlmsgDone, []byte{0, 0, 0, 0})
)

func TestParseDump(t *testing.T) {
	type want struct {
		ip  string
		mac byte // last byte of 02:00:00:00:00:xx
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []want
		wantErr bool
	}{
		{name: "empty", in: nil},
		{name: "ipv4 and ipv6", in: concat(
			neighMsg(afInet, nudReachable, "192.0.2.7", mac7),
			neighMsg(afInet6, 0x04 /* STALE */, "2001:db8::8", mac8), done),
			want: []want{{"192.0.2.7", 7}, {"2001:db8::8", 8}}},
		{name: "skips failed and incomplete", in: concat(
			neighMsg(afInet, nudFailed, "192.0.2.1", mac7),
			neighMsg(afInet, nudIncomplete, "192.0.2.2", mac7),
			neighMsg(afInet, nudPermanent, "192.0.2.3", mac8), done),
			want: []want{{"192.0.2.3", 8}}},
		{name: "skips missing, short, long and zero lladdr", in: concat(
			nlmsg(rtmNewNeigh, ndmsg(afInet, nudReachable, rta(ndaDst, []byte{192, 0, 2, 1}))),
			neighMsg(afInet, nudReachable, "192.0.2.2", []byte{1, 2, 3, 4}),
			neighMsg(afInet6, nudReachable, "2001:db8::3", []byte{1, 2, 3, 4, 5, 6, 7, 8}),
			neighMsg(afInet, nudNoARP, "192.0.2.4", make([]byte, 6)), done),
			want: nil},
		{name: "skips a family/address mismatch", in: concat(
			neighMsg(afInet6, nudReachable, "192.0.2.5", mac7), done)},
		{name: "skips other message types", in: concat(
			nlmsg(16 /* RTM_NEWLINK */, make([]byte, 16)),
			neighMsg(afInet, nudReachable, "192.0.2.6", mac7), done),
			want: []want{{"192.0.2.6", 7}}},
		{name: "stops at done", in: concat(done, neighMsg(afInet, nudReachable, "192.0.2.7", mac7))},
		{name: "extra attributes, flags in type", in: concat(nlmsg(rtmNewNeigh, ndmsg(afInet, nudReachable,
			rta(3 /* NDA_CACHEINFO */, make([]byte, 16)), rta(ndaDst|0x4000, []byte{192, 0, 2, 9}), rta(ndaLLAddr, mac8))), done),
			want: []want{{"192.0.2.9", 8}}},
		{name: "bad attribute length drops the message only", in: concat(
			nlmsg(rtmNewNeigh, append(ndmsg(afInet, nudReachable, rta(ndaLLAddr, mac7)), 0xff, 0, 1, 0)),
			neighMsg(afInet, nudReachable, "192.0.2.10", mac8), done),
			want: []want{{"192.0.2.10", 8}}},
		{name: "short ndmsg", in: concat(nlmsg(rtmNewNeigh, []byte{2, 0, 0}), done)},
		{name: "netlink error", in: nlmsg(nlmsgError, []byte{0xea, 0xff, 0xff, 0xff}), wantErr: true},
		{name: "truncated header", in: []byte{1, 2, 3}, wantErr: true},
		{name: "length past the end", in: neighMsg(afInet, nudReachable, "192.0.2.7", mac7)[:20], wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := parseDump(tc.in, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var got []want
			for _, e := range es {
				if e.mac != [6]byte{2, 0, 0, 0, 0, e.mac[5]} {
					t.Errorf("mac %x", e.mac)
				}
				got = append(got, want{e.ip.String(), e.mac[5]})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzParseDump checks parseMessages and parseDump together: every entry names an address,
// a usable one has a MAC and a usable state, parseDump is parseMessages without the gone
// entries, and a mirror fed every entry as an announcement holds only usable MACs.
func FuzzParseDump(f *testing.F) {
	f.Add(concat(neighMsg(afInet, nudReachable, "192.0.2.7", mac7), neighMsg(afInet6, nudPermanent, "2001:db8::8", mac8), done))
	f.Add(concat(nlmsg(rtmNewNeigh, append(ndmsg(afInet, nudReachable, rta(ndaLLAddr, mac7)), 0xff, 0, 1, 0)), done))
	f.Add(nlmsg(nlmsgError, []byte{0xea, 0xff, 0xff, 0xff}))
	f.Add(concat(neighMsg(afInet, nudStale, "192.0.2.7", mac8), nlmsg(rtmDelNeigh, ndmsg(afInet, nudStale, rta(ndaDst, []byte{192, 0, 2, 7}))),
		nlmsg(rtmDelNeigh, ndmsgFlags(afInet6, 0, ntfProxy, rta(ndaDst, netip.MustParseAddr("2001:db8::8").AsSlice()))),
		neighMsg(afInet6, nudFailed, "2001:db8::9", nil)))
	f.Fuzz(func(t *testing.T, in []byte) {
		all, errAll := parseMessages(in, nil)
		es, err := parseDump(in, nil)
		if (err == nil) != (errAll == nil) {
			t.Fatalf("parseDump error %v, parseMessages error %v", err, errAll)
		}
		var usable []entry
		for _, e := range all {
			if !e.ip.IsValid() || e.ip.Is4In6() || e.ip.Zone() != "" {
				t.Fatalf("entry without a plain address %+v", e)
			}
			if e.gone != (e.mac == [6]byte{}) {
				t.Fatalf("gone %v with mac %x", e.gone, e.mac)
			}
			if !e.gone {
				if e.state&(nudFailed|nudIncomplete) != 0 {
					t.Fatalf("usable entry in an unusable state %+v", e)
				}
				usable = append(usable, e)
			}
		}
		if !reflect.DeepEqual(usable, es) && len(usable)+len(es) > 0 {
			t.Fatalf("parseDump %v, usable parseMessages %v", es, usable)
		}
		if len(all) > len(in)/(nlmsgHdrLen+ndmsgLen+rtaHdrLen+4) {
			t.Fatalf("%d entries from %d bytes", len(all), len(in))
		}
		tb := &Table{macs: build(es)}
		for _, e := range all {
			tb.set(e)
		}
		for ip, hs := range tb.macs {
			if len(hs) == 0 || pick(hs) == nil {
				t.Fatalf("%s kept with no entry", ip)
			}
			for _, h := range hs {
				if len(h.mac) != 6 || [6]byte(h.mac) == [6]byte{} {
					t.Fatalf("%s kept with MAC %v", ip, h.mac)
				}
			}
		}
	})
}

const (
	nudStale = 0x04
	nudDelay = 0x08
)

// errMsg is a netlink error reply carrying -errno, as the kernel sends it.
func errMsg(errno int32) []byte {
	p := make([]byte, 4+nlmsgHdrLen)
	ne.PutUint32(p[0:4], uint32(-errno))
	return nlmsg(nlmsgError, p)
}
