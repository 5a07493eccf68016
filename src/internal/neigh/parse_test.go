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
	b := make([]byte, ndmsgLen)
	b[0] = family
	ne.PutUint32(b[4:8], 3) // ifindex
	ne.PutUint16(b[8:10], state)
	for _, a := range attrs {
		b = append(b, a...)
	}
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

func FuzzParseDump(f *testing.F) {
	f.Add(concat(neighMsg(afInet, nudReachable, "192.0.2.7", mac7), neighMsg(afInet6, nudPermanent, "2001:db8::8", mac8), done))
	f.Add(concat(nlmsg(rtmNewNeigh, append(ndmsg(afInet, nudReachable, rta(ndaLLAddr, mac7)), 0xff, 0, 1, 0)), done))
	f.Add(nlmsg(nlmsgError, []byte{0xea, 0xff, 0xff, 0xff}))
	f.Fuzz(func(t *testing.T, in []byte) {
		es, _ := parseDump(in, nil)
		for _, e := range es {
			if !e.ip.IsValid() || e.ip.Is4In6() || e.mac == [6]byte{} || e.state&(nudFailed|nudIncomplete) != 0 {
				t.Fatalf("unusable entry %+v", e)
			}
		}
		if len(es) > len(in)/(nlmsgHdrLen+ndmsgLen+2*rtaHdrLen+10) {
			t.Fatalf("%d entries from %d bytes", len(es), len(in))
		}
		index(es)
	})
}

const nudStale = 0x04

// errMsg is a netlink error reply carrying -errno, as the kernel sends it.
func errMsg(errno int32) []byte {
	p := make([]byte, 4+nlmsgHdrLen)
	ne.PutUint32(p[0:4], uint32(-errno))
	return nlmsg(nlmsgError, p)
}
