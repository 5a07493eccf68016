package pkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"go/version"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The layout opkg reads, for every architecture: outer members and their order, every control
// field, conffiles, owners, modes, the symlinks fw4 follows, and an ELF for the right machine.
func TestIPKLayout(t *testing.T) {
	m := ipks(t)
	for arch, want := range arches {
		t.Run(arch, func(t *testing.T) {
			path := m["airelay/"+arch]
			p := openIPK(t, path)
			var names []string
			for _, o := range p.outer {
				names = append(names, o.hdr.Name)
				if o.hdr.Uid != 0 || o.hdr.Gid != 0 || o.hdr.Uname != "" || o.hdr.Gname != "" {
					t.Errorf("outer %s owned by %d/%d %q/%q", o.hdr.Name, o.hdr.Uid, o.hdr.Gid, o.hdr.Uname, o.hdr.Gname)
				}
			}
			if strings.Join(names, " ") != "./debian-binary ./data.tar.gz ./control.tar.gz" {
				t.Errorf("outer members %v", names)
			}
			if db := find(p.outer, "./debian-binary"); db == nil || string(db.data) != "2.0\n" {
				t.Errorf("debian-binary %q", db.data)
			}

			ctl := find(p.control, "./control")
			if ctl == nil {
				t.Fatal("no ./control")
			}
			keys, f := controlFields(t, ctl.data)
			wantKeys := "Package Version Depends Source SourceName License Section SourceDateEpoch URL Maintainer Require-User Architecture Installed-Size Description"
			if strings.Join(keys, " ") != wantKeys {
				t.Errorf("control fields\n got %s\nwant %s", strings.Join(keys, " "), wantKeys)
			}
			version := f["Version"]
			if !regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*-[0-9A-Za-z.+~]+$`).MatchString(version) {
				t.Errorf("Version %q is not an opkg version", version)
			}
			if filepath.Base(path) != "airelay_"+version+"_"+arch+".ipk" {
				t.Errorf("file name %s for version %s", filepath.Base(path), version)
			}
			for k, v := range map[string]string{"Package": "airelay", "Depends": "libc", "Source": "package/airelay", "SourceName": "airelay",
				"License": "Apache-2.0", "Section": "net", "Require-User": "airelay:airelay", "Architecture": arch} {
				if f[k] != v {
					t.Errorf("%s: %q, want %q", k, f[k], v)
				}
			}
			if !strings.HasPrefix(f["Description"], "AI API relay") {
				t.Errorf("Description %q", f["Description"])
			}
			raw, _ := gzip.NewReader(bytes.NewReader(p.dataRaw))
			n, _ := io.Copy(io.Discard, raw)
			if f["Installed-Size"] != strconv.FormatInt(n, 10) {
				t.Errorf("Installed-Size %s, data.tar is %d bytes (ipkg-build counts the uncompressed tar)", f["Installed-Size"], n)
			}
			if cf := find(p.control, "./conffiles"); cf == nil || string(cf.data) != "/etc/config/airelay\n" || cf.hdr.Mode != 0o644 {
				t.Errorf("conffiles missing, not 0644, or not exactly /etc/config/airelay")
			}
			for _, s := range []string{"./postinst", "./prerm"} {
				e := find(p.control, s)
				if e == nil || e.hdr.Mode != 0o755 || !bytes.HasPrefix(e.data, []byte("#!/bin/sh\n")) {
					t.Errorf("%s missing, not 0755 or not a shell script", s)
				}
			}

			wantData := map[string]struct {
				typ  byte
				mode int64
				link string
			}{
				"./usr/sbin/airelay":                                     {tar.TypeReg, 0o755, ""},
				"./etc/init.d/airelay":                                   {tar.TypeReg, 0o755, ""},
				"./etc/config/airelay":                                   {tar.TypeReg, 0o600, ""},
				"./etc/uci-defaults/90-airelay":                          {tar.TypeReg, 0o755, ""},
				"./lib/upgrade/keep.d/airelay":                           {tar.TypeReg, 0o644, ""},
				"./usr/share/airelay/fw4.include":                        {tar.TypeReg, 0o644, ""},
				"./usr/share/nftables.d/chain-pre/dstnat/30-airelay.nft": {tar.TypeSymlink, 0o777, "/var/run/airelay/fw4-dstnat.nft"},
				"./usr/share/nftables.d/chain-pre/input/30-airelay.nft":  {tar.TypeSymlink, 0o777, "/var/run/airelay/fw4-input.nft"},
			}
			var prev string
			for i, e := range p.data {
				h := e.hdr
				if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s owned by %d/%d %q/%q, want root 0/0", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
				}
				if !strings.HasPrefix(h.Name, "./") {
					t.Errorf("%s is not ./-relative", h.Name)
				}
				if i > 0 && h.Name <= prev {
					t.Errorf("%s after %s: not in tar --sort=name order", h.Name, prev)
				}
				prev = h.Name
				if h.ModTime.Unix() != p.outer[0].hdr.ModTime.Unix() {
					t.Errorf("%s mtime %v differs from the others", h.Name, h.ModTime)
				}
				if h.Typeflag == tar.TypeDir && h.Mode != 0o755 {
					t.Errorf("directory %s mode %o", h.Name, h.Mode)
				}
				w, ok := wantData[h.Name]
				if !ok || h.Name == "./" {
					if h.Typeflag != tar.TypeDir {
						t.Errorf("unexpected %s in data.tar.gz", h.Name)
					}
					continue
				}
				delete(wantData, h.Name)
				if h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.link {
					t.Errorf("%s: type %c mode %o link %q, want %c %o %q", h.Name, h.Typeflag, h.Mode, h.Linkname, w.typ, w.mode, w.link)
				}
			}
			delete(wantData, "./")
			for n := range wantData {
				t.Errorf("%s missing from data.tar.gz", n)
			}

			bin, err := fileOf(p, "./usr/sbin/airelay")
			if err != nil {
				t.Fatal(err)
			}
			ef, err := elf.NewFile(bytes.NewReader(bin))
			if err != nil {
				t.Fatalf("the binary is not ELF: %v", err)
			}
			if ef.Machine.String() != want.machine || (ef.ByteOrder.String() == "LittleEndian") != want.little ||
				(ef.Class == elf.ELFCLASS64) != want.class64 || ef.OSABI != elf.ELFOSABI_NONE && ef.OSABI != elf.ELFOSABI_LINUX {
				t.Errorf("ELF %v %v %v, want %s little=%v 64=%v", ef.Machine, ef.ByteOrder, ef.Class, want.machine, want.little, want.class64)
			}
			for _, prog := range ef.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Error("the binary asks for a dynamic loader; OpenWrt's musl has none for Go")
				}
			}
			if ef.Section(".symtab") != nil {
				t.Error("the binary is not stripped")
			}
		})
	}
}

// The tar program (what opkg's own unpacker follows) agrees with the reader above.
func TestIPKTarCLI(t *testing.T) {
	need(t, "tar")
	path := ipks(t)["airelay/x86_64"]
	dir := t.TempDir()
	run(t, dir, nil, "tar", "-xzf", path)
	out := run(t, dir, nil, "tar", "-tzvf", "data.tar.gz", "--numeric-owner")
	for _, want := range []string{
		"-rwxr-xr-x 0/0", "./usr/sbin/airelay",
		"-rw------- 0/0", "./etc/config/airelay",
		"./usr/share/nftables.d/chain-pre/dstnat/30-airelay.nft -> /var/run/airelay/fw4-dstnat.nft",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tar -tv lacks %q:\n%s", want, out)
		}
	}
	ctl := run(t, dir, nil, "tar", "-xzOf", "control.tar.gz", "./control")
	if !strings.Contains(ctl, "Package: airelay\n") {
		t.Errorf("control via tar: %s", ctl)
	}
}

// install unpacks an ipk into root as opkg does (data to /, control files to
// /usr/lib/opkg/info/<pkg>.*, the installed files and links to <pkg>.list) and returns the
// control directory.
func install(t *testing.T, path, root string) string {
	t.Helper()
	p := openIPK(t, path)
	_, ctl := controlFields(t, find(p.control, "./control").data)
	name := ctl["Package"]
	var list []string
	for _, e := range p.data {
		dst := filepath.Join(root, filepath.FromSlash(e.hdr.Name))
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			os.Symlink(e.hdr.Linkname, dst)
			list = append(list, strings.TrimPrefix(e.hdr.Name, "."))
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, e.data, os.FileMode(e.hdr.Mode)); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dst, os.FileMode(e.hdr.Mode))
			list = append(list, strings.TrimPrefix(e.hdr.Name, "."))
		}
	}
	info := filepath.Join(root, "usr/lib/opkg/info")
	os.MkdirAll(info, 0o755)
	for _, e := range p.control {
		if e.hdr.Typeflag == tar.TypeReg {
			os.WriteFile(filepath.Join(info, name+"."+strings.TrimPrefix(e.hdr.Name, "./")), e.data, os.FileMode(e.hdr.Mode))
		}
	}
	os.WriteFile(filepath.Join(info, name+".list"), []byte(strings.Join(list, "\n")+"\n"), 0o644)
	return info
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			m[p] = fi.Mode().String() + " " + strconv.FormatInt(fi.Size(), 10)
		}
		return nil
	})
	return m
}

// postinst against an offline root (IPKG_INSTROOT set, as the image builder runs it): it only
// enables the service inside that root. It starts nothing and writes nothing outside the root.
func TestPostinstOfflineRoot(t *testing.T) {
	path := ipks(t)["airelay/x86_64"]
	base := t.TempDir()
	root := filepath.Join(base, "root")
	info := install(t, path, root)
	calls := filepath.Join(base, "calls")
	env := append(os.Environ(), "IPKG_INSTROOT="+root, "CALLS="+calls, "HOME="+base, "TMPDIR="+base)

	// 1. Not an OpenWrt root (no /lib/functions.sh): nothing at all happens.
	before := snapshot(t, base)
	run(t, base, env, "sh", filepath.Join(info, "airelay.postinst"))
	run(t, base, env, "sh", filepath.Join(info, "airelay.prerm"))
	if after := snapshot(t, base); len(after) != len(before) {
		t.Errorf("postinst changed a root that is not OpenWrt")
	}

	// 2. An OpenWrt-shaped root. /lib/functions.sh and /etc/rc.common here are stand-ins
	// written for this test: default_postinst does what the router's does for an offline root
	// (enable each init script through rc.common), and both log every call.
	os.MkdirAll(filepath.Join(root, "lib"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/functions.sh"), []byte(`
default_postinst() {
	echo "default_postinst $*" >>"$CALLS"
	local pkg; pkg=$(basename "${1%.*}")
	for i in $(sed -n 's|^\./etc/init\.d/|/etc/init.d/|p' "$IPKG_INSTROOT/usr/lib/opkg/info/$pkg.list"); do
		if [ -n "$IPKG_INSTROOT" ]; then sh "$IPKG_INSTROOT/etc/rc.common" "$IPKG_INSTROOT$i" enable
		else "$i" enable; "$i" start; fi
	done
}
default_prerm() { echo "default_prerm $*" >>"$CALLS"; }
`), 0o644)
	os.WriteFile(filepath.Join(root, "etc/rc.common"), []byte(`
initscript=$1; action=$2
echo "rc.common $initscript $action" >>"$CALLS"
. "$initscript"
name=$(basename "$initscript")
case "$action" in
enable)
	mkdir -p "$IPKG_INSTROOT/etc/rc.d"
	ln -sf "../init.d/$name" "$IPKG_INSTROOT/etc/rc.d/S$START$name"
	ln -sf "../init.d/$name" "$IPKG_INSTROOT/etc/rc.d/K$STOP$name" ;;
*) echo "UNEXPECTED $action" >>"$CALLS" ;;
esac
`), 0o644)
	os.WriteFile(filepath.Join(info, "airelay.list"), []byte("./etc/init.d/airelay\n./usr/sbin/airelay\n"), 0o644)
	hostRC := "/etc/rc.d/S95airelay"
	_, hostHad := os.Lstat(hostRC)
	run(t, base, env, "sh", filepath.Join(info, "airelay.postinst"))
	log, _ := os.ReadFile(calls)
	if !strings.Contains(string(log), "rc.common "+root+"/etc/init.d/airelay enable") || strings.Contains(string(log), "UNEXPECTED") {
		t.Errorf("calls:\n%s", log)
	}
	for _, l := range []string{"S95airelay", "K10airelay"} {
		if target, err := os.Readlink(filepath.Join(root, "etc/rc.d", l)); err != nil || target != "../init.d/airelay" {
			t.Errorf("rc.d/%s: %q %v", l, target, err)
		}
	}
	if _, err := os.Lstat(hostRC); hostHad != nil && err == nil {
		t.Error("postinst enabled the service on the build machine")
	}
	if _, err := os.Stat("/var/run/airelay"); err == nil {
		t.Log("note: /var/run/airelay exists on this machine (not made by this test)")
	}
	// IPKG_NO_SCRIPT=1 (opkg --noscripts style) skips everything.
	os.Remove(calls)
	run(t, base, append(env, "IPKG_NO_SCRIPT=1"), "sh", filepath.Join(info, "airelay.postinst"))
	if _, err := os.Stat(calls); err == nil {
		t.Error("postinst ran with IPKG_NO_SCRIPT=1")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
}

// go.mod's go line is OpenWrt 24.10's Go (1.23), which would give a binary built by a newer Go
// that Go's old defaults (GODEBUG): no post-quantum key exchange towards the providers, SHA-1
// signatures accepted in TLS 1.2. src/cmd/airelay asks for Go 1.26's defaults when built with
// Go 1.26 or later; the packaged binary must carry them.
func TestBinaryGODEBUGDefaults(t *testing.T) {
	path := ipks(t)["airelay/x86_64"]
	bin, err := fileOf(openIPK(t, path), "./usr/sbin/airelay")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "airelay")
	if err := os.WriteFile(f, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	bi, err := buildinfo.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if version.Compare(bi.GoVersion, "go1.26") < 0 {
		t.Skipf("built with %s: its own defaults apply", bi.GoVersion)
	}
	for _, s := range bi.Settings {
		if s.Key != "DefaultGODEBUG" {
			continue
		}
		for _, old := range []string{"tlsmlkem=0", "tlssecpmlkem=0", "tlssha1=1", "x509usepolicies=0"} {
			if strings.Contains(","+s.Value+",", ","+old+",") {
				t.Errorf("the binary (%s) has the old default %s: DefaultGODEBUG=%s", bi.GoVersion, old, s.Value)
			}
		}
	}
}
