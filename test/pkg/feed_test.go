package pkg

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The feed Makefiles: package/airelay/Makefile and luci-app/Makefile.
var feedMakefiles = []string{"package/airelay/Makefile", "luci-app/Makefile"}

var (
	includeRE = regexp.MustCompile(`(?m)^\s*-?include\s+(\S+)`)
	assignRE  = regexp.MustCompile(`(?m)^\s*(PKG_[A-Z_]+)\s*:?=\s*(.*?)\s*$`)
	hex40RE   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	hex64RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// feedMakefileProblems says what keeps an OpenWrt feed Makefile from building the same thing
// wherever it is used: an include relative to the Makefile (it breaks as soon as the Makefile
// sits anywhere but inside openwrt/packages or openwrt/luci: `src-git airelay` puts it in
// feeds/airelay/…), and a source that moves or is not checked (a branch or tag instead of a
// commit, no hash or PKG_*HASH:=skip).
func feedMakefileProblems(mk string) []string {
	var out []string
	for _, m := range includeRE.FindAllStringSubmatch(mk, -1) {
		if !strings.HasPrefix(m[1], "$(TOPDIR)/") && !strings.HasPrefix(m[1], "$(INCLUDE_DIR)/") {
			out = append(out, fmt.Sprintf("include %s: relative to the Makefile; use $(TOPDIR)/feeds/… or $(INCLUDE_DIR)/…", m[1]))
		}
	}
	v := map[string]string{}
	for _, m := range assignRE.FindAllStringSubmatch(mk, -1) {
		v[m[1]] = m[2]
	}
	switch {
	case v["PKG_SOURCE_PROTO"] != "":
		if !hex40RE.MatchString(v["PKG_SOURCE_VERSION"]) {
			out = append(out, fmt.Sprintf("PKG_SOURCE_VERSION %q: not a commit (a branch or tag moves)", v["PKG_SOURCE_VERSION"]))
		}
		if !hex64RE.MatchString(v["PKG_MIRROR_HASH"]) {
			out = append(out, fmt.Sprintf("PKG_MIRROR_HASH %q: the download is not checked", v["PKG_MIRROR_HASH"]))
		}
	case v["PKG_SOURCE"] != "" || v["PKG_SOURCE_URL"] != "":
		if !hex64RE.MatchString(v["PKG_HASH"]) {
			out = append(out, fmt.Sprintf("PKG_HASH %q: the download is not checked", v["PKG_HASH"]))
		}
	}
	if v["PKG_VERSION"] == "" || v["PKG_RELEASE"] == "" {
		out = append(out, "PKG_VERSION and PKG_RELEASE must be set (make ipk and make apk read them)")
	}
	return out
}

// The checker itself, on what the feed Makefile held before issue 21.
func TestFeedMakefileProblems(t *testing.T) {
	for _, tc := range []struct{ mk, want string }{
		{"PKG_VERSION:=1\nPKG_RELEASE:=1\ninclude ../../lang/golang/golang-package.mk\n", "relative"},
		{"PKG_VERSION:=1\nPKG_RELEASE:=1\ninclude ../../luci.mk\n", "relative"},
		{"PKG_VERSION:=1\nPKG_RELEASE:=1\nPKG_SOURCE_PROTO:=git\nPKG_SOURCE_VERSION:=main\nPKG_MIRROR_HASH:=" + strings.Repeat("a", 64) + "\n", "not a commit"},
		{"PKG_VERSION:=1\nPKG_RELEASE:=1\nPKG_SOURCE_PROTO:=git\nPKG_SOURCE_VERSION:=" + strings.Repeat("a", 40) + "\nPKG_MIRROR_HASH:=skip\n", "not checked"},
		{"PKG_VERSION:=1\nPKG_RELEASE:=1\nPKG_SOURCE:=x.tar.gz\nPKG_SOURCE_URL:=https://x/\n", "not checked"},
		{"PKG_RELEASE:=1\n", "PKG_VERSION"},
	} {
		if p := strings.Join(feedMakefileProblems(tc.mk), "; "); !strings.Contains(p, tc.want) {
			t.Errorf("%q: problems %q, want one about %q", tc.mk, p, tc.want)
		}
	}
	ok := "PKG_VERSION:=1\nPKG_RELEASE:=1\ninclude $(TOPDIR)/rules.mk\ninclude $(INCLUDE_DIR)/package.mk\nPKG_SOURCE:=a.tar.gz\nPKG_HASH:=" + strings.Repeat("0", 64) + "\n"
	if p := feedMakefileProblems(ok); len(p) > 0 {
		t.Errorf("a pinned Makefile: %v", p)
	}
}

// Both feed Makefiles include OpenWrt's files by $(TOPDIR)/$(INCLUDE_DIR), build a fixed
// source, and carry the version make ipk and make apk give.
func TestFeedMakefilesPinned(t *testing.T) {
	root := repoRoot(t)
	versions := map[string]string{}
	for _, f := range feedMakefiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range feedMakefileProblems(string(b)) {
			t.Errorf("%s: %s", f, p)
		}
		if !strings.HasPrefix(string(b), "# SPDX-License-Identifier: Apache-2.0\n") {
			t.Errorf("%s: no SPDX-License-Identifier line first", f)
		}
		v := map[string]string{}
		for _, m := range assignRE.FindAllStringSubmatch(string(b), -1) {
			v[m[1]] = m[2]
		}
		versions[f] = v["PKG_VERSION"] + "-r" + v["PKG_RELEASE"]
		if v["PKG_MAINTAINER"] != ipkMaintainer || v["PKG_LICENSE"] != "Apache-2.0" || v["PKG_LICENSE_FILES"] != "" && v["PKG_LICENSE_FILES"] != "LICENSE" {
			t.Errorf("%s: maintainer %q license %q %q", f, v["PKG_MAINTAINER"], v["PKG_LICENSE"], v["PKG_LICENSE_FILES"])
		}
	}
	_, ctl := controlFields(t, find(openIPK(t, ipks(t)["airelay/x86_64"]).control, "./control").data)
	for f, v := range versions {
		if v != ctl["Version"] {
			t.Errorf("%s gives version %s, make ipk and make apk %s", f, v, ctl["Version"])
		}
	}
	if _, err := os.Stat(filepath.Join(root, "LICENSE")); err != nil {
		t.Errorf("PKG_LICENSE_FILES names LICENSE: %v", err)
	}
}

// The Maintainer field of every package (mk/ipk.mk, both feed Makefiles).
const ipkMaintainer = "airelay maintainers <maintainers@airelay.invalid>"

// openwrtTop assembles an OpenWrt TOPDIR from the stand-in build system in testdata/openwrt
// (see its README): the repository as the src-git feed feeds/airelay, its two packages linked
// under package/feeds/airelay/ as `scripts/feeds install` links them, package/airelay/Makefile
// copied to feeds/packages/net/airelay/ and luci-app/ to feeds/luci/applications/
// luci-app-airelay/, as openwrt/packages and openwrt/luci would hold them.
func openwrtTop(t *testing.T) string {
	t.Helper()
	need(t, "make")
	root := repoRoot(t)
	top := t.TempDir()
	run(t, root, nil, "cp", "-R", "test/pkg/testdata/openwrt/.", top)
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(top, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("package/feeds/airelay")
	mk("feeds/packages/net/airelay")
	mk("feeds/luci/applications")
	for _, l := range [][2]string{
		{root, "feeds/airelay"},
		{"../../../feeds/airelay/package/airelay", "package/feeds/airelay/airelay"},
		{"../../../feeds/airelay/luci-app", "package/feeds/airelay/luci-app"},
	} {
		if err := os.Symlink(l[0], filepath.Join(top, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	run(t, root, nil, "cp", "package/airelay/Makefile", filepath.Join(top, "feeds/packages/net/airelay/"))
	run(t, root, nil, "cp", "-R", "luci-app", filepath.Join(top, "feeds/luci/applications/luci-app-airelay"))
	os.RemoveAll(filepath.Join(top, "feeds/luci/applications/luci-app-airelay/tests"))
	return top
}

// sdk runs make TARGET in DIR of the TOPDIR, as the OpenWrt build runs a package's Makefile
// (make -C its directory); its output goes to OUT/<package>/.
func sdk(top, dir, target string) (string, []byte, error) {
	out := filepath.Join(top, "out", strings.ReplaceAll(dir, "/", "_"))
	gomodcache, _ := exec.Command("go", "env", "GOMODCACHE").Output()
	cmd := exec.Command("make", "-s", "-C", filepath.Join(top, dir), "TOPDIR="+top, "OUT="+out,
		"STUB_GOMODCACHE="+strings.TrimSpace(string(gomodcache)), target)
	b, err := cmd.CombinedOutput()
	return out, b, err
}

// sdkPackage is what the stand-in SDK made of one package: CONTROL/ (control fields, conffiles,
// the scripts package-pack.mk would put in the .ipk) and root/ (what Package/<name>/install
// installed).
type sdkPackage struct {
	dir     string
	control map[string]string
}

func readSDK(t *testing.T, out, name string) *sdkPackage {
	t.Helper()
	p := &sdkPackage{dir: filepath.Join(out, name), control: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(p.dir, "CONTROL/control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		p.control[k] = strings.TrimSpace(v)
	}
	return p
}

func (p *sdkPackage) script(name string) []byte {
	b, _ := os.ReadFile(filepath.Join(p.dir, "CONTROL", name))
	return b
}

// compareWithIPK holds what the SDK made of a package to what make ipk and make apk made of it:
// version and control fields, conffiles, every maintainer script byte for byte (the .ipk's
// control members; the .apk's scripts wrap the same parts), and, when it was built, every
// installed file with its mode, link target and content (the binary aside: another compiler
// run). Returns the .ipk's data by path.
func compareWithIPK(t *testing.T, p *sdkPackage, ipkPath, apkPath, name string, built bool) {
	t.Helper()
	ipkg := openIPK(t, ipkPath)
	_, ctl := controlFields(t, find(ipkg.control, "./control").data)
	for _, k := range []string{"Version", "Maintainer", "URL", "License", "Section", "Architecture", "Require-User"} {
		if p.control[k] != ctl[k] {
			t.Errorf("%s: SDK %s %q, make ipk %q", name, k, p.control[k], ctl[k])
		}
	}
	desc, _ := os.ReadFile(filepath.Join(p.dir, "CONTROL/description"))
	if strings.Join(strings.Fields(string(desc)), " ") != strings.Join(strings.Fields(ctl["Description"]), " ") {
		t.Errorf("%s: SDK description %q, make ipk %q", name, desc, ctl["Description"])
	}
	for _, s := range []string{"conffiles", "postinst", "prerm", "postinst-pkg", "prerm-pkg", "postrm"} {
		var inIPK []byte
		if m := find(ipkg.control, "./"+s); m != nil {
			inIPK = m.data
		}
		if sdk := p.script(s); !bytes.Equal(sdk, inIPK) {
			t.Errorf("%s: control file %s differs\nSDK:\n%s\nmake ipk:\n%s", name, s, sdk, inIPK)
		}
	}
	a := inspect(t, apkPath)
	if a.Info.Version != p.control["Version"] {
		t.Errorf("%s: make apk version %s, SDK %s", name, a.Info.Version, p.control["Version"])
	}
	want := apkScripts(name, p.script("postinst-pkg"), p.script("prerm-pkg"), p.script("postrm"))
	for s, body := range want {
		// mkipk quotes the path of functions.sh, which package-pack.mk leaves bare
		got := strings.ReplaceAll(a.Scripts[s], `"${IPKG_INSTROOT}/lib/functions.sh"`, `${IPKG_INSTROOT}/lib/functions.sh`)
		if got != body {
			t.Errorf("%s: make apk's %s is not what the SDK's parts give:\n%s\nwant\n%s", name, s, a.Scripts[s], body)
		}
	}
	for s := range a.Scripts {
		if _, ok := want[s]; !ok {
			t.Errorf("%s: make apk has a %s script the SDK does not give", name, s)
		}
	}
	if !built {
		return
	}
	var got, exp []string
	root := filepath.Join(p.dir, "root")
	filepath.Walk(root, func(f string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel := "." + strings.TrimPrefix(f, root)
		line := fmt.Sprintf("%s %o", rel, fi.Mode().Perm())
		if fi.Mode()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(f)
			line = rel + " -> " + l
		} else if rel != "./usr/sbin/airelay" {
			b, _ := os.ReadFile(f)
			line += fmt.Sprintf(" %x", b)
		}
		got = append(got, line)
		return nil
	})
	for _, e := range ipkg.data {
		switch e.hdr.Typeflag {
		case tar.TypeSymlink:
			exp = append(exp, e.hdr.Name+" -> "+e.hdr.Linkname)
		case tar.TypeReg:
			line := fmt.Sprintf("%s %o", e.hdr.Name, e.hdr.Mode)
			if e.hdr.Name != "./usr/sbin/airelay" {
				line += fmt.Sprintf(" %x", e.data)
			}
			exp = append(exp, line)
		}
	}
	sort.Strings(got)
	sort.Strings(exp)
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Errorf("%s: the SDK installs\n%s\nmake ipk packs\n%s", name, short(got), short(exp))
	}
}

// apkScripts are the scripts OpenWrt 25.12's include/package-pack.mk gives a package's .apk from
// its Makefile's postinst, prerm and postrm (here as the SDK wrote them: postinst-pkg,
// prerm-pkg, postrm), written out again here from a reading of package-pack.mk: post-install
// sources functions.sh, names the package, adds its users, runs default_postinst and then the
// postinst part without its "#!" lines; post-upgrade is post-install with PKG_UPGRADE=1;
// pre-deinstall runs default_prerm, then the prerm part; post-deinstall is the postrm.
func apkScripts(name string, postinstPkg, prermPkg, postrm []byte) map[string]string {
	strip := func(b []byte) string {
		var out strings.Builder
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimLeft(l, " \t"), "#!") {
				out.WriteString(l)
			}
		}
		return out.String()
	}
	head := "[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\n" +
		"export root=\"${IPKG_INSTROOT}\"\nexport pkgname=\"" + name + "\"\n"
	install := "[ \"${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0\n" + head + "add_group_and_user\ndefault_postinst\n" + strip(postinstPkg)
	m := map[string]string{
		"post-install":  "#!/bin/sh\n" + install,
		"post-upgrade":  "#!/bin/sh\nexport PKG_UPGRADE=1\n" + install,
		"pre-deinstall": "#!/bin/sh\n" + head + "default_prerm\n" + strip(prermPkg),
	}
	if len(postrm) > 0 {
		m["post-deinstall"] = string(postrm)
	}
	return m
}

// short cuts the file contents out of compareWithIPK's lines for a readable message.
func short(lines []string) string {
	var out []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[1] != "->" {
			l = f[0] + " " + f[1] + " sha…" + fmt.Sprint(len(f[2])/2) + "B"
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// airelay built from its src-git feed in an SDK (the stand-in of testdata/openwrt, driving the
// real Makefile with GNU make) is the package make ipk and make apk build: same version, fields,
// conffiles, scripts and files; the binary reports that version and carries the default config
// (//go:embed): the build runs from the whole source, and golang-build.sh's GOPATH copy has the
// file too (GO_PKG_INSTALL_EXTRA).
func TestFeedSDKBuild(t *testing.T) {
	top := openwrtTop(t)
	out, b, err := sdk(top, "package/feeds/airelay/airelay", "stub-build")
	if err != nil {
		t.Fatalf("make stub-build: %v\n%s", err, b)
	}
	p := readSDK(t, out, "airelay")
	compareWithIPK(t, p, ipks(t)["airelay/x86_64"], apks(t)["airelay/x86_64"], "airelay", true)
	bin := filepath.Join(p.dir, "root/usr/sbin/airelay")
	if v := strings.TrimSpace(run(t, top, nil, bin, "version")); v != "airelay "+p.control["Version"] {
		t.Errorf("the SDK's binary says %q, want airelay %s", v, p.control["Version"])
	}
	cfg := run(t, top, nil, bin, "print-config")
	def, _ := os.ReadFile(filepath.Join(repoRoot(t), "src/internal/config/default.uci"))
	for _, want := range []string{"config airelay 'main'", "config provider 'openai'", "config provider 'anthropic'"} {
		if !strings.Contains(cfg, want) || !strings.Contains(string(def), want) {
			t.Errorf("the SDK's binary has no embedded default config (%q):\n%s", want, cfg)
		}
	}
	gopath := filepath.Join(top, "build_dir/airelay-"+strings.SplitN(p.control["Version"], "-r", 2)[0], ".go_work/build/src/github.com/airelay/airelay/src/internal/config/default.uci")
	if c, err := os.ReadFile(gopath); err != nil || !bytes.Equal(c, def) {
		t.Errorf("golang-build.sh's copy lacks the embedded config: %v", err)
	}
}

// The same Makefile copied into openwrt/packages (net/airelay/): OpenWrt's files are found
// (nothing relative), the metadata is the same; the build stops at once saying which Makefile
// to use there, since this one builds the checkout it sits in.
func TestFeedMakefileInPackagesFeed(t *testing.T) {
	top := openwrtTop(t)
	out, b, err := sdk(top, "feeds/packages/net/airelay", "stub-meta")
	if err != nil {
		t.Fatalf("make stub-meta in feeds/packages/net/airelay: %v\n%s", err, b)
	}
	_, ctl := controlFields(t, find(openIPK(t, ipks(t)["airelay/x86_64"]).control, "./control").data)
	if p := readSDK(t, out, "airelay"); p.control["Version"] != ctl["Version"] {
		t.Errorf("version %s, want %s", p.control["Version"], ctl["Version"])
	}
	_, b, err = sdk(top, "feeds/packages/net/airelay", "stub-build")
	if err == nil || !strings.Contains(string(b), "is not an airelay checkout") || !strings.Contains(string(b), "make release") {
		t.Errorf("a build outside the airelay feed: %v\n%s", err, b)
	}
}

// luci-app-airelay from the src-git feed (feeds/airelay/luci-app/: the directory name is not
// the package's) and copied into openwrt/luci (applications/luci-app-airelay/) is the package
// make ipk and make apk build: same name, version, fields, scripts (its own postinst, no prerm
// part) and files.
func TestFeedSDKBuildLuci(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot(t), "luci-app")); err != nil {
		t.Skip("no luci-app/")
	}
	top := openwrtTop(t)
	for _, dir := range []string{"package/feeds/airelay/luci-app", "feeds/luci/applications/luci-app-airelay"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, b, err := sdk(top, dir, "stub-build")
			if err != nil {
				t.Fatalf("make stub-build: %v\n%s", err, b)
			}
			p := readSDK(t, out, "luci-app-airelay")
			compareWithIPK(t, p, ipks(t)["luci-app-airelay/all"], apks(t)["luci-app-airelay/noarch"], "luci-app-airelay", true)
			if len(p.script("prerm-pkg")) > 0 {
				t.Error("luci-app-airelay has a prerm part")
			}
		})
	}
}

// luci-app-airelay: built when luci-app/ exists; architecture all, Depends on airelay, its
// htdocs under /www and root under /; no script of its own but the postinst part.
func TestLuciIPK(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot(t), "luci-app")); err != nil {
		t.Skip("luci-app/ does not exist yet: no luci-app-airelay package to check")
	}
	path := ipks(t)["luci-app-airelay/all"]
	if path == "" {
		t.Fatal("luci-app/ exists but dist/ has no luci-app-airelay_*_all.ipk (run make ipk)")
	}
	p := openIPK(t, path)
	_, f := controlFields(t, find(p.control, "./control").data)
	if f["Architecture"] != "all" || !strings.Contains(f["Depends"], "airelay") || f["Package"] != "luci-app-airelay" {
		t.Errorf("control: %v", f)
	}
	want, err := os.ReadFile(filepath.Join(repoRoot(t), "files/pkg/luci-app-airelay.postinst-pkg"))
	if err != nil {
		t.Fatal(err)
	}
	if m := find(p.control, "./postinst-pkg"); m == nil || !bytes.Equal(m.data, want) {
		t.Error("luci-app-airelay's postinst-pkg is not files/pkg/luci-app-airelay.postinst-pkg")
	}
	for _, s := range []string{"./prerm-pkg", "./postrm", "./preinst"} {
		if find(p.control, s) != nil {
			t.Errorf("luci-app-airelay has %s", s)
		}
	}
	for _, e := range p.data {
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s not owned by root", e.hdr.Name)
		}
		if e.hdr.Typeflag == tar.TypeReg && !strings.HasPrefix(e.hdr.Name, "./www/") && !strings.HasPrefix(e.hdr.Name, "./usr/") && !strings.HasPrefix(e.hdr.Name, "./etc/") {
			t.Errorf("unexpected %s", e.hdr.Name)
		}
	}
}

// What `make release` writes for openwrt/packages and openwrt/luci (make openwrt-src, the same
// recipe, for the working tree): net/airelay/Makefile downloads the release tarball, checked by
// its PKG_HASH (the checker finds nothing moving), and builds from it in the SDK, in
// feeds/packages/net/airelay/, the package make ipk and make apk build, embedded config
// included; applications/luci-app-airelay/ builds there as luci-app-airelay.
func TestReleaseMakefiles(t *testing.T) {
	need(t, "make")
	need(t, "git")
	root := repoRoot(t)
	rel := t.TempDir()
	if out, err := exec.Command("make", "-C", root, "--no-print-directory", "openwrt-src", "RELEASE_DIR="+rel).CombinedOutput(); err != nil {
		t.Fatalf("make openwrt-src: %v\n%s", err, out)
	}
	mk, err := os.ReadFile(filepath.Join(rel, "openwrt/net/airelay/Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range feedMakefileProblems(string(mk)) {
		t.Errorf("the release Makefile: %s", p)
	}
	v := map[string]string{}
	for _, m := range assignRE.FindAllStringSubmatch(string(mk), -1) {
		v[m[1]] = m[2]
	}
	if v["PKG_SOURCE"] != "$(PKG_NAME)-$(PKG_VERSION).tar.gz" || !hex64RE.MatchString(v["PKG_HASH"]) ||
		v["PKG_SOURCE_URL"] != "https://github.com/airelay/airelay/releases/download/v$(PKG_VERSION)/" {
		t.Errorf("the release Makefile's source: %q %q %q", v["PKG_SOURCE"], v["PKG_SOURCE_URL"], v["PKG_HASH"])
	}
	for _, gone := range []string{"AIRELAY_TREE", "define Build/Prepare", "airelay-source", "airelay-prepare"} {
		if strings.Contains(string(mk), gone) {
			t.Errorf("the release Makefile still has %q", gone)
		}
	}

	top := openwrtTop(t)
	run(t, root, nil, "cp", filepath.Join(rel, "openwrt/net/airelay/Makefile"), filepath.Join(top, "feeds/packages/net/airelay/Makefile"))
	os.MkdirAll(filepath.Join(top, "dl"), 0o755)
	run(t, root, nil, "cp", filepath.Join(rel, "airelay-"+v["PKG_VERSION"]+".tar.gz"), filepath.Join(top, "dl/"))
	out, b, err := sdk(top, "feeds/packages/net/airelay", "stub-build")
	if err != nil {
		t.Fatalf("make stub-build of the release Makefile: %v\n%s", err, b)
	}
	p := readSDK(t, out, "airelay")
	compareWithIPK(t, p, ipks(t)["airelay/x86_64"], apks(t)["airelay/x86_64"], "airelay", true)
	bin := filepath.Join(p.dir, "root/usr/sbin/airelay")
	if v := strings.TrimSpace(run(t, top, nil, bin, "version")); v != "airelay "+p.control["Version"] {
		t.Errorf("the release build's binary says %q, want airelay %s", v, p.control["Version"])
	}
	if cfg := run(t, top, nil, bin, "print-config"); !strings.Contains(cfg, "config provider 'openai'") {
		t.Errorf("the release build's binary has no embedded default config:\n%s", cfg)
	}

	if _, err := os.Stat(filepath.Join(root, "luci-app")); err != nil {
		return
	}
	luci := filepath.Join(top, "feeds/luci/applications/luci-app-airelay")
	os.RemoveAll(luci)
	run(t, root, nil, "cp", "-R", filepath.Join(rel, "openwrt/applications/luci-app-airelay"), luci)
	out, b, err = sdk(top, "feeds/luci/applications/luci-app-airelay", "stub-build")
	if err != nil {
		t.Fatalf("make stub-build of the release luci-app-airelay: %v\n%s", err, b)
	}
	compareWithIPK(t, readSDK(t, out, "luci-app-airelay"), ipks(t)["luci-app-airelay/all"], apks(t)["luci-app-airelay/noarch"], "luci-app-airelay", true)
}
