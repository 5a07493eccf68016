package pkg

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// package/airelay/Makefile (the SDK build) installs the same files and symlinks as the ipk
// make ipk builds, and lists the same conffile.
func TestFeedMakefileMatchesIPK(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "package/airelay/Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var feed []string
	for _, m := range regexp.MustCompile(`(?m)^\t\$\((?:INSTALL_BIN|INSTALL_CONF|INSTALL_DATA|LN)\) \S+ \$\(1\)(\S+)$`).FindAllStringSubmatch(string(mk), -1) {
		feed = append(feed, "."+m[1])
	}
	var pkg []string
	for _, e := range openIPK(t, ipks(t)["airelay/x86_64"]).data {
		if e.hdr.Typeflag != tar.TypeDir {
			pkg = append(pkg, e.hdr.Name)
		}
	}
	sort.Strings(feed)
	sort.Strings(pkg)
	if strings.Join(feed, "\n") != strings.Join(pkg, "\n") {
		t.Errorf("feed Makefile installs\n%s\nthe ipk holds\n%s", strings.Join(feed, "\n"), strings.Join(pkg, "\n"))
	}
	if !regexp.MustCompile(`(?s)define Package/airelay/conffiles\n/etc/config/airelay\nendef`).Match(mk) {
		t.Error("feed Makefile conffiles differ from the ipk's")
	}
	// the restart on upgrade, as make apk's post-upgrade has it (files/apk/postinst-pkg, its
	// commands; make's $$ is the shell's $)
	m := regexp.MustCompile(`(?s)define Package/airelay/postinst\n(.*?)endef`).FindSubmatch(mk)
	pkgPart, err := os.ReadFile(filepath.Join(repoRoot(t), "files/apk/postinst-pkg"))
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || commands(strings.ReplaceAll(string(m[1]), "$$", "$")) != commands(string(pkgPart)) {
		t.Errorf("feed Makefile's Package/airelay/postinst is not the commands of files/apk/postinst-pkg")
	}
	for _, want := range []string{"include ../../lang/golang/golang-package.mk", "GO_PKG:=github.com/airelay/airelay\n",
		"GO_PKG_BUILD_PKG:=github.com/airelay/airelay/src/cmd/airelay", "GO_PKG_LDFLAGS_X:=main.version=", "$(eval $(call GoBinPackage,airelay))"} {
		if !strings.Contains(string(mk), want) {
			t.Errorf("feed Makefile lacks %q", want)
		}
	}
}

// luci-app-airelay: built when luci-app/ exists; architecture all, Depends on airelay, its
// htdocs under /www and root under /.
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
	// LuCI's own postinst (drop the menu cache, reload rpcd), not the daemon's, which would
	// try to enable init scripts this package does not have.
	want, err := os.ReadFile(filepath.Join(repoRoot(t), "files/ipk/luci-postinst"))
	if err != nil {
		t.Fatal(err)
	}
	if m := find(p.control, "./postinst"); m == nil || !bytes.Equal(m.data, want) {
		t.Error("luci-app-airelay's postinst is not files/ipk/luci-postinst")
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

// commands is a shell script without comments and blank lines.
func commands(script string) string {
	var out []string
	for _, l := range strings.Split(script, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
