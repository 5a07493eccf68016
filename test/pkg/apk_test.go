package pkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	apkOnce sync.Once
	apkErr  error
	apkOut  []byte
)

// apks returns the packages in dist/apk/ by name/directory ("airelay/x86_64",
// "luci-app-airelay/noarch"), running `make apk` once when some are missing, older than the
// sources, or of another version than the ipks (it builds them with the ipks' version, so both
// hold the same binary).
func apks(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	version := ""
	if p := ipks(t)["airelay/x86_64"]; p != "" {
		version = strings.SplitN(filepath.Base(p), "_", 3)[1]
	}
	find := func() map[string]string {
		m := map[string]string{}
		at := map[string]time.Time{}
		files, _ := filepath.Glob(filepath.Join(root, "dist", "apk", "*", "*.apk"))
		for _, f := range files {
			base := strings.TrimSuffix(filepath.Base(f), ".apk")
			i := strings.LastIndex(base, "-")
			if i < 0 {
				continue
			}
			if j := strings.LastIndex(base[:i], "-"); j > 0 {
				i = j // name-1.2.3-r4: the version is the last two dash-separated parts
			}
			st, err := os.Stat(f)
			if err != nil {
				continue
			}
			k := base[:i] + "/" + filepath.Base(filepath.Dir(f))
			if st.ModTime().After(at[k]) {
				m[k], at[k] = f, st.ModTime()
			}
		}
		return m
	}
	m := find()
	missing := false
	src := newestSource(root)
	for a := range arches {
		st, err := os.Stat(m["airelay/"+a])
		if err != nil || st.ModTime().Before(src) || filepath.Base(m["airelay/"+a]) != "airelay-"+version+".apk" {
			missing = true
		}
	}
	if _, err := os.Stat(filepath.Join(root, "luci-app")); err == nil && m["luci-app-airelay/noarch"] == "" {
		missing = true
	}
	if missing {
		apkOnce.Do(func() {
			args := []string{"--no-print-directory", "apk"}
			if version != "" {
				args = append(args, "VERSION="+version) // the ipks' version, so the binaries match
			}
			cmd := exec.Command("make", args...)
			cmd.Dir = root
			apkOut, apkErr = cmd.CombinedOutput()
		})
		if apkErr != nil {
			t.Fatalf("make apk: %v\n%s", apkErr, apkOut)
		}
		m = find()
	}
	return m
}

// apkContents is what `mkfeed inspect` (package apk's Inspect, the project's ADB reader, held
// to the real apk-tools by golden dumps) reports of a .apk or packages.adb.
type apkContents struct {
	Schema     string `json:"schema"`
	ADBSHA256  string `json:"adb_sha256"`
	Signatures int    `json:"signatures"`
	Info       struct {
		Name          string   `json:"name"`
		Version       string   `json:"version"`
		Hashes        string   `json:"hashes"`
		Description   string   `json:"description"`
		Arch          string   `json:"arch"`
		License       string   `json:"license"`
		Origin        string   `json:"origin"`
		Maintainer    string   `json:"maintainer"`
		URL           string   `json:"url"`
		InstalledSize uint64   `json:"installed_size"`
		FileSize      uint64   `json:"file_size"`
		Depends       []string `json:"depends"`
		Provides      []string `json:"provides"`
	} `json:"info"`
	Files []struct {
		Path   string `json:"path"`
		Dir    bool   `json:"dir"`
		Mode   int64  `json:"mode"`
		User   string `json:"user"`
		Group  string `json:"group"`
		Size   uint64 `json:"size"`
		Hash   string `json:"hash"`
		Data   string `json:"data"`
		Target string `json:"target"`
	} `json:"files"`
	Scripts  map[string]string `json:"scripts"`
	Packages []struct {
		Name     string `json:"name"`
		Hashes   string `json:"hashes"`
		FileSize uint64 `json:"file_size"`
	} `json:"packages"`
}

var (
	mkfeedOnce sync.Once
	mkfeedBin  string
	mkfeedErr  error
)

// mkfeed builds src/cmd/mkfeed once and runs it.
func mkfeed(t *testing.T, dir string, args ...string) string {
	t.Helper()
	mkfeedOnce.Do(func() {
		d, err := os.MkdirTemp("", "mkfeed")
		if err != nil {
			mkfeedErr = err
			return
		}
		mkfeedBin = filepath.Join(d, "mkfeed")
		cmd := exec.Command("go", "build", "-o", mkfeedBin, "./src/cmd/mkfeed")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			mkfeedErr = fmt.Errorf("go build ./src/cmd/mkfeed: %v\n%s", err, out)
		}
	})
	if mkfeedErr != nil {
		t.Fatal(mkfeedErr)
	}
	return run(t, dir, nil, mkfeedBin, args...)
}

func inspect(t *testing.T, path string) *apkContents {
	t.Helper()
	var cs []apkContents
	if err := json.Unmarshal([]byte(mkfeed(t, ".", "inspect", path)), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("mkfeed inspect %s: %v", path, err)
	}
	return &cs[0]
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// Every .apk holds exactly the ipk's files with the same modes, owners, content and link
// targets, plus what OpenWrt's build adds under /lib/apk/packages/; its info fields are the ipk's
// control fields; the file name is what OpenWrt 25.12's build gives.
func TestAPKMatchesIPK(t *testing.T) {
	am, im := apks(t), ipks(t)
	for arch := range arches {
		t.Run(arch, func(t *testing.T) {
			checkAPKAgainstIPK(t, am["airelay/"+arch], im["airelay/"+arch], arch, "airelay")
		})
	}
	t.Run("luci", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(repoRoot(t), "luci-app")); err != nil {
			t.Skip("no luci-app/")
		}
		checkAPKAgainstIPK(t, am["luci-app-airelay/noarch"], im["luci-app-airelay/all"], "noarch", "luci-app-airelay")
	})
}

func checkAPKAgainstIPK(t *testing.T, apkPath, ipkPath, arch, name string) {
	t.Helper()
	if apkPath == "" || ipkPath == "" {
		t.Fatalf("missing package: apk %q ipk %q", apkPath, ipkPath)
	}
	a, i := inspect(t, apkPath), openIPK(t, ipkPath)
	_, ctl := controlFields(t, find(i.control, "./control").data)
	if want := name + "-" + ctl["Version"] + ".apk"; filepath.Base(apkPath) != want || filepath.Base(filepath.Dir(apkPath)) != arch {
		t.Errorf("file %s, want %s/%s", apkPath, arch, want)
	}
	for k, got := range map[string]string{ctl["Version"]: a.Info.Version, ctl["License"]: a.Info.License, ctl["Source"]: a.Info.Origin,
		ctl["URL"]: a.Info.URL, ctl["Maintainer"]: a.Info.Maintainer, ctl["Description"]: a.Info.Description, name: a.Info.Name, arch: a.Info.Arch} {
		if got != k {
			t.Errorf("info field %q, want %q (as the ipk's control)", got, k)
		}
	}
	var wantDeps []string
	for _, d := range strings.Split(ctl["Depends"], ",") {
		wantDeps = append(wantDeps, strings.TrimSpace(d))
	}
	sort.Strings(wantDeps)
	if strings.Join(a.Info.Depends, " ") != strings.Join(wantDeps, " ") {
		t.Errorf("depends %v, want %v", a.Info.Depends, wantDeps)
	}
	if strings.Join(a.Info.Provides, " ") != name+"-any" {
		t.Errorf("provides %v, want %s-any (OpenWrt's implicit virtual provide)", a.Info.Provides, name)
	}

	files := map[string]int{}
	var installed uint64
	var list []string // what name.list must hold: every file and link but the ones written after it
	meta := "/lib/apk/packages/" + name + "."
	for n, e := range a.Files {
		if e.User != "root" || e.Group != "root" {
			t.Errorf("%s owned by %s:%s", e.Path, e.User, e.Group)
		}
		if e.Dir {
			if m := find(i.data, "."+strings.TrimSuffix(e.Path, "/")+"/"); m != nil && m.hdr.Mode != e.Mode {
				t.Errorf("directory %s: mode %o, ipk %o", e.Path, e.Mode, m.hdr.Mode)
			}
			continue
		}
		files[e.Path] = n
		if e.Target == "" {
			installed += e.Size
		}
		if !strings.HasPrefix(e.Path, meta) || strings.HasSuffix(e.Path, ".rusers") {
			list = append(list, e.Path)
		}
		m := find(i.data, "."+e.Path)
		if m == nil {
			if !strings.HasPrefix(e.Path, meta) {
				t.Errorf("%s is in the apk, not in the ipk", e.Path)
			}
			continue
		}
		sum := sha256.Sum256(m.data)
		switch {
		case m.hdr.Typeflag == tar.TypeSymlink:
			if e.Target != m.hdr.Linkname || e.Mode != 0o777 {
				t.Errorf("%s -> %q (%o), ipk -> %q", e.Path, e.Target, e.Mode, m.hdr.Linkname)
			}
		case e.Mode != m.hdr.Mode || e.Size != uint64(len(m.data)) || e.Hash != hex.EncodeToString(sum[:]) || (len(m.data) > 0 && e.Data != e.Hash):
			t.Errorf("%s: mode %o size %d hash %s data %s; ipk %o, %d bytes, sha256 %x", e.Path, e.Mode, e.Size, e.Hash, e.Data, m.hdr.Mode, len(m.data), sum)
		}
	}
	for _, m := range i.data {
		if _, ok := files[strings.TrimPrefix(m.hdr.Name, ".")]; !ok && m.hdr.Typeflag != tar.TypeDir {
			t.Errorf("%s is in the ipk, not in the apk", m.hdr.Name)
		}
	}
	if a.Info.InstalledSize != installed {
		t.Errorf("installed-size %d, files sum to %d", a.Info.InstalledSize, installed)
	}

	// /lib/apk/packages: the file list default_postinst/default_prerm read, the ipk's conffiles
	// with their shipped sha256, the Require-User users. The file contents are checked through
	// their hashes against the text they must hold.
	sort.Strings(list)
	want := map[string]string{"list": strings.Join(list, "\n") + "\n"}
	if cf := find(i.control, "./conffiles"); cf != nil {
		want["conffiles"] = string(cf.data)
		var static []string
		for _, c := range strings.Fields(string(cf.data)) {
			static = append(static, c+" "+a.Files[files[c]].Hash)
		}
		want["conffiles_static"] = strings.Join(static, "\n") + "\n"
	}
	if u := ctl["Require-User"]; u != "" {
		want["rusers"] = u + "\n"
	}
	for ext, text := range want {
		n, ok := files[meta+ext]
		sum := sha256.Sum256([]byte(text))
		if !ok || a.Files[n].Hash != hex.EncodeToString(sum[:]) {
			t.Errorf("%s%s missing or not\n%s", meta, ext, text)
		}
	}
	for p := range files {
		if strings.HasPrefix(p, meta) && want[strings.TrimPrefix(p, meta)] == "" {
			t.Errorf("unexpected %s", p)
		}
	}

	// scripts: OpenWrt's defaults for this package name, then the package's own part
	for _, s := range []string{"post-install", "post-upgrade", "pre-deinstall"} {
		if !strings.Contains(a.Scripts[s], "export pkgname=\""+name+"\"\n") {
			t.Errorf("%s does not name the package:\n%s", s, a.Scripts[s])
		}
	}
	if !strings.Contains(a.Scripts["post-install"], "\ndefault_postinst\n") || !strings.Contains(a.Scripts["pre-deinstall"], "\ndefault_prerm\n") ||
		!strings.HasPrefix(a.Scripts["post-upgrade"], "#!/bin/sh\nexport PKG_UPGRADE=1\n") {
		t.Errorf("scripts:\n%v", a.Scripts)
	}
	if name == "airelay" && !strings.Contains(a.Scripts["post-upgrade"], "/etc/init.d/airelay restart") {
		t.Error("post-upgrade does not restart airelay")
	}
	if name == "luci-app-airelay" && !strings.Contains(a.Scripts["post-install"], "killall -HUP rpcd") {
		t.Error("luci-app-airelay's post-install does not reload rpcd")
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		dir := t.TempDir()
		var files []string
		for s, body := range a.Scripts {
			f := filepath.Join(dir, s)
			os.WriteFile(f, []byte(body), 0o755)
			files = append(files, f)
		}
		if out, err := exec.Command(sc, append([]string{"-s", "sh", "-e", "SC1091"}, files...)...).CombinedOutput(); err != nil {
			t.Errorf("shellcheck of the apk scripts: %v\n%s", err, out)
		}
	}
}

// make feed's directory, built here from dist/ with fresh keys: per architecture both formats
// and their indexes; packages.adb signed and naming every .apk with its size and ADB hash;
// Packages naming every .ipk with its size and sha256, Packages.gz the same, Packages.sig by the
// usign key; the public keys under keys/.
func TestFeed(t *testing.T) {
	am, im := apks(t), ipks(t)
	dir := t.TempDir()
	mkfeed(t, dir, "keys", "--dir", filepath.Join(dir, "keys"))
	// only this build's packages: dist/ may hold older versions
	apkDir, ipkDir := filepath.Join(dir, "apk"), filepath.Join(dir, "ipk")
	copyTo := func(d, p string) {
		os.MkdirAll(d, 0o755)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, filepath.Base(p)), b, 0o644)
	}
	for k, p := range am {
		copyTo(filepath.Join(apkDir, strings.SplitN(k, "/", 2)[1]), p)
	}
	for _, p := range im {
		copyTo(ipkDir, p)
	}
	out := filepath.Join(dir, "feed")
	mkfeed(t, dir, "--out", out, "--apk", apkDir, "--ipk", ipkDir, "--arch", "x86_64,mipsel_24kc",
		"--sign-key", filepath.Join(dir, "keys/airelay-apk.key"), "--usign-key", filepath.Join(dir, "keys/airelay-usign.key"))

	// keys/: the apk key as /etc/apk/keys/ takes it, the usign key named by its fingerprint
	upub := ""
	ents, _ := os.ReadDir(filepath.Join(out, "keys"))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(out, "keys", e.Name()))
		if e.Name() != "airelay-apk.pem" && strings.HasPrefix(string(b), "untrusted comment: public key "+e.Name()+"\n") {
			upub = filepath.Join(out, "keys", e.Name())
		}
	}
	if upub == "" {
		t.Fatalf("no usign public key named by its fingerprint in %s/keys", out)
	}
	for _, arch := range []string{"x86_64", "mipsel_24kc"} {
		d := filepath.Join(out, arch)
		mkfeed(t, d, "verify", "--key", filepath.Join(out, "keys", "airelay-apk.pem"), "packages.adb")
		idx := inspect(t, filepath.Join(d, "packages.adb"))
		listed := map[string]string{}
		for _, p := range idx.Packages {
			listed[p.Name] = p.Hashes + " " + itoa(p.FileSize)
		}
		for _, k := range []string{"airelay/" + arch, "luci-app-airelay/noarch"} {
			if am[k] == "" {
				continue
			}
			name := filepath.Join(d, filepath.Base(am[k]))
			b, err := os.ReadFile(name)
			if err != nil {
				t.Errorf("%s: %v", arch, err)
				continue
			}
			if want := inspect(t, name).ADBSHA256 + " " + itoa(uint64(len(b))); listed[strings.SplitN(k, "/", 2)[0]] != want {
				t.Errorf("%s/packages.adb lists %s as %q, want %q (ADB sha256, size)", arch, k, listed[strings.SplitN(k, "/", 2)[0]], want)
			}
		}

		pk, err := os.ReadFile(filepath.Join(d, "Packages"))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"airelay/" + arch, "luci-app-airelay/all"} {
			if im[k] == "" {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(d, filepath.Base(im[k])))
			sum := sha256.Sum256(b)
			want := "Filename: " + filepath.Base(im[k]) + "\nSize: " + itoa(uint64(len(b))) + "\nSHA256sum: " + hex.EncodeToString(sum[:]) + "\nDescription: "
			if !bytes.Contains(pk, []byte(want)) {
				t.Errorf("%s/Packages lacks\n%s", arch, want)
			}
		}
		gz, _ := os.ReadFile(filepath.Join(d, "Packages.gz"))
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		unz, _ := io.ReadAll(zr)
		if !bytes.Equal(unz, pk) {
			t.Errorf("%s/Packages.gz is not Packages", arch)
		}
		mkfeed(t, d, "verify", "--key", upub, "Packages")
	}
}

// The .apk's scripts against an offline root (IPKG_INSTROOT set, as the image builder runs
// them), with stand-ins for OpenWrt 25.12's /lib/functions.sh and /etc/rc.common written for this
// test: they read the package's /lib/apk/packages/ files the way the real ones do and log every
// call. post-install creates the Require-User user and enables the service in the root;
// post-upgrade does the same and restarts nothing (there is no live daemon offline);
// pre-deinstall disables it. Without /lib/functions.sh nothing happens.
func TestAPKScriptsOfflineRoot(t *testing.T) {
	path := apks(t)["airelay/x86_64"]
	base := t.TempDir()
	root, scripts := filepath.Join(base, "root"), filepath.Join(base, "scripts")
	mkfeed(t, base, "extract", "--root", root, "--scripts", scripts, path)
	calls := filepath.Join(base, "calls")
	env := append(os.Environ(), "IPKG_INSTROOT="+root, "CALLS="+calls, "HOME="+base, "TMPDIR="+base)
	script := func(name string, extra ...string) {
		t.Helper()
		run(t, base, append(env, extra...), "sh", filepath.Join(scripts, "airelay."+name))
	}

	before := snapshot(t, base)
	for _, s := range []string{"post-install", "post-upgrade", "pre-deinstall"} {
		script(s)
	}
	if after := snapshot(t, base); len(after) != len(before) {
		t.Errorf("the scripts changed a root that is not OpenWrt")
	}

	os.WriteFile(filepath.Join(root, "lib/functions.sh"), []byte(`
add_group_and_user() {
	echo "add_group_and_user $pkgname $(cat "$root/lib/apk/packages/$pkgname.rusers")" >>"$CALLS"
}
default_postinst() {
	echo "default_postinst $pkgname PKG_UPGRADE=$PKG_UPGRADE" >>"$CALLS"
	for i in $(grep -s "^/etc/init.d/" "$root/lib/apk/packages/$pkgname.list"); do
		if [ -n "$root" ]; then sh "$root/etc/rc.common" "$root$i" enable
		else echo "LIVE $i" >>"$CALLS"; fi
	done
}
default_prerm() {
	echo "default_prerm $pkgname" >>"$CALLS"
	for i in $(grep -s "^/etc/init.d/" "$root/lib/apk/packages/$pkgname.list"); do
		if [ -n "$root" ]; then sh "$root/etc/rc.common" "$root$i" disable
		else echo "LIVE $i" >>"$CALLS"; fi
	done
}
`), 0o644)
	os.WriteFile(filepath.Join(root, "etc/rc.common"), []byte(`
echo "rc.common $1 $2" >>"$CALLS"
`), 0o644)
	script("post-install")
	script("post-upgrade")
	script("pre-deinstall")
	log, _ := os.ReadFile(calls)
	want := "add_group_and_user airelay airelay:airelay\n" +
		"default_postinst airelay PKG_UPGRADE=\n" +
		"rc.common " + root + "/etc/init.d/airelay enable\n" +
		"add_group_and_user airelay airelay:airelay\n" +
		"default_postinst airelay PKG_UPGRADE=1\n" +
		"rc.common " + root + "/etc/init.d/airelay enable\n" +
		"default_prerm airelay\n" +
		"rc.common " + root + "/etc/init.d/airelay disable\n"
	if string(log) != want {
		t.Errorf("calls:\n%s\nwant\n%s", log, want)
	}
	os.Remove(calls)
	script("post-install", "IPKG_NO_SCRIPT=1")
	if _, err := os.Stat(calls); err == nil {
		t.Error("post-install ran with IPKG_NO_SCRIPT=1")
	}
}
