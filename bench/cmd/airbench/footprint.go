package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// runFootprint reads what `make cross` and `make ipk` left in -dist, and the sizes of the
// Debian amd64 programs compared against (which are not OpenWrt's builds of them).
func (e *env) runFootprint() error {
	f := &FootprintSection{}
	bins, _ := filepath.Glob(filepath.Join(e.o.dist, "airelay-linux-*"))
	sort.Strings(bins)
	for _, b := range bins {
		if st, err := os.Stat(b); err == nil {
			f.Binaries = append(f.Binaries, FileSize{Name: filepath.Base(b), Bytes: st.Size()})
		}
	}
	ipks, _ := filepath.Glob(filepath.Join(e.o.dist, "*.ipk"))
	sort.Strings(ipks)
	for _, b := range ipks {
		if st, err := os.Stat(b); err == nil {
			f.IPKs = append(f.IPKs, FileSize{Name: filepath.Base(b), Bytes: st.Size()})
		}
	}
	if len(bins) == 0 {
		e.note("footprint: no airelay-linux-* in " + e.o.dist + " (make cross did not run)")
	}
	ref := func(name, path, note string) {
		if st, err := os.Stat(path); err == nil {
			f.Reference = append(f.Reference, FileSize{Name: name, Bytes: st.Size(), Note: note})
		}
	}
	ngx, hasNgx := lookPath("nginx")
	hap, hasHap := lookPath("haproxy")
	dm, hasDm := lookPath("dnsmasq")
	if hasNgx {
		ref("nginx (binary)", ngx, "")
		ref("nginx stream module", streamModule(), "")
		f.Reference = append(f.Reference, FileSize{Name: "nginx shared libraries", Bytes: sharedLibs(ngx), Note: "ldd, not counting libc"})
	}
	if hasHap {
		ref("haproxy (binary)", hap, "")
		f.Reference = append(f.Reference, FileSize{Name: "haproxy shared libraries", Bytes: sharedLibs(hap), Note: "ldd, not counting libc"})
	}
	if hasDm {
		ref("dnsmasq (binary)", dm, "")
	}
	for _, pkg := range []string{"nginx", "libnginx-mod-stream", "haproxy", "dnsmasq-base"} {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Installed-Size}", pkg).Output()
		if err != nil {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err == nil {
			f.Reference = append(f.Reference, FileSize{Name: "package " + pkg, Bytes: kb << 10, Note: "dpkg Installed-Size"})
		}
	}
	if t, err := packageSizes(e.o.symbols); err == nil {
		f.Packages = t
	} else {
		e.note("footprint: no size by package: " + err.Error())
	}
	e.res.Footprint = f
	return nil
}

var lddLine = regexp.MustCompile(`=>\s+(\S+)\s+\(`)

// sharedLibs sums the sizes of the libraries a binary loads, libc, libm and the loader excepted
// (every program on the router has those).
func sharedLibs(bin string) int64 {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return 0
	}
	var total int64
	for _, m := range lddLine.FindAllStringSubmatch(string(out), -1) {
		base := filepath.Base(m[1])
		if strings.HasPrefix(base, "libc.so") || strings.HasPrefix(base, "libm.so") || strings.HasPrefix(base, "ld-linux") {
			continue
		}
		p, err := filepath.EvalSymlinks(m[1])
		if err != nil {
			continue
		}
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	return total
}
