package pkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// defaultPrerm is a stand-in for OpenWrt's default_prerm (base-files /lib/functions.sh, written
// for this test from a reading of the real one, the same in 24.10 and 25.12): opkg's prerm-pkg
// first, then each init script of the package: disabled unless upgrading, and stopped.
const defaultPrerm = `
default_prerm() {
	local root="${IPKG_INSTROOT}"
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	local ret=0
	local filelist="${root}/usr/lib/opkg/info/${pkgname}.list"
	[ -f "$root/lib/apk/packages/${pkgname}.list" ] && filelist="$root/lib/apk/packages/${pkgname}.list"
	if [ -f "$root/usr/lib/opkg/info/${pkgname}.prerm-pkg" ]; then
		( . "$root/usr/lib/opkg/info/${pkgname}.prerm-pkg" )
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" disable
		else
			if [ "$PKG_UPGRADE" != "1" ]; then
				echo "disable $i" >>/calls
			fi
			"$i" stop
		fi
	done
	return $ret
}
`

// removalRoot is an OpenWrt-shaped chroot with airelay and luci-app-airelay installed in the
// given format and airelay started by its real init script (stand-ins for procd, dnsmasq and
// fw4; see initscript_test.go): /var/run/airelay holds the runtime config and the fw4
// fragments. It returns the root and a function that runs a package's removal script there
// (ipk: /usr/lib/opkg/info/<pkg>.<script>; apk: the .apk's script) with the given environment
// and arguments, and returns its output and the calls the stand-ins logged.
func removalRoot(t *testing.T, format string) (string, func(pkg, script string, env []string, args ...string) (string, string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	scripts := filepath.Join(root, "scripts")
	switch format {
	case "ipk":
		install(t, ipks(t)["airelay/x86_64"], root)
		install(t, ipks(t)["luci-app-airelay/all"], root)
	case "apk":
		am := apks(t)
		mkfeed(t, root, "extract", "--root", root, "--scripts", scripts, am["airelay/x86_64"])
		mkfeed(t, root, "extract", "--root", root, "--scripts", scripts, am["luci-app-airelay/noarch"])
	}
	chrootRoot(t, root)
	os.WriteFile(filepath.Join(root, "lib/functions.sh"), []byte(defaultPrerm), 0o644)
	if out, err := exec.Command("chroot", root, "/etc/init.d/airelay", "start").CombinedOutput(); err != nil {
		t.Fatalf("/etc/init.d/airelay start: %v\n%s", err, out)
	}
	for _, f := range []string{"airelay", "fw4-dstnat.nft", "fw4-input.nft"} {
		if _, err := os.Stat(filepath.Join(root, "var/run/airelay", f)); err != nil {
			t.Fatalf("after start: %v", err)
		}
	}
	return root, func(pkg, script string, env []string, args ...string) (string, string) {
		t.Helper()
		os.Remove(filepath.Join(root, "calls"))
		path := "/usr/lib/opkg/info/" + pkg + "." + script
		if format == "apk" {
			path = "/scripts/" + pkg + "." + script
		}
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			return "", "" // the package has no such script
		}
		cmd := exec.Command("chroot", append([]string{root, "/bin/sh", path}, args...)...)
		cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s %v: %v\n%s", pkg, script, args, err, out)
		}
		calls, _ := os.ReadFile(filepath.Join(root, "calls"))
		return string(out), string(calls)
	}
}

// Removing or upgrading luci-app-airelay runs only LuCI's part: the daemon's runtime directory
// (its config with the API keys, the fw4 fragments the firewall includes) stays, and nothing is
// stopped. Removing airelay stops it first (so its dnsmasq lines and fw4 rules go, which the
// init script finds through /var/run/airelay), then removes the directory, then says what stays
// on the router and how to remove it. Both formats, as opkg (prerm, postrm with "remove" or
// "upgrade") and apk (pre-deinstall, post-deinstall) run them.
func TestRemovalScripts(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot(t), "luci-app")); err != nil {
		t.Skip("no luci-app/")
	}
	for _, format := range []string{"ipk", "apk"} {
		t.Run(format, func(t *testing.T) {
			root, remove := removalRoot(t, format)
			prerm, postrm := "prerm", "postrm"
			if format == "apk" {
				prerm, postrm = "pre-deinstall", "post-deinstall"
			}
			runDir := filepath.Join(root, "var/run/airelay")
			untouched := func(what string) {
				t.Helper()
				for _, f := range []string{"airelay", "fw4-dstnat.nft", "fw4-input.nft"} {
					if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
						t.Errorf("%s removed the running daemon's %s: %v", what, f, err)
					}
				}
			}

			// luci-app-airelay, removed and (opkg) upgraded
			_, calls := remove("luci-app-airelay", prerm, nil, "remove")
			untouched("removing luci-app-airelay")
			if calls != "" {
				t.Errorf("removing luci-app-airelay called\n%s", calls)
			}
			if out, _ := remove("luci-app-airelay", postrm, nil, "remove"); out != "" {
				t.Errorf("luci-app-airelay's postrm says %q", out)
			}
			if format == "ipk" {
				remove("luci-app-airelay", "prerm", []string{"PKG_UPGRADE=1"}, "upgrade", "0.1.0-r2")
				untouched("upgrading luci-app-airelay")
			}

			// what stays after airelay goes: keys, history, an edited config, the user
			os.WriteFile(filepath.Join(root, "etc/config/airelay_keys"), []byte("config key 'openai'\n\toption api_key 'sk-x'\n"), 0o600)
			os.WriteFile(filepath.Join(root, "etc/config/airelay_keys.saved"), []byte("config key 'openai_2'\n\toption api_key 'sk-y'\n"), 0o600)
			os.MkdirAll(filepath.Join(root, "etc/airelay"), 0o700)
			os.WriteFile(filepath.Join(root, "etc/airelay/history.json"), []byte("{}\n"), 0o600)
			f, _ := os.OpenFile(filepath.Join(root, "etc/passwd"), os.O_APPEND|os.O_WRONLY, 0o644)
			f.WriteString("airelay:x:32768:32768:airelay:/var/run/airelay:/bin/false\n")
			f.Close()

			_, calls = remove("airelay", prerm, nil, "remove")
			if !strings.Contains(calls, "fw4 -q reload") || !strings.Contains(calls, "procd_kill airelay") {
				t.Errorf("removing airelay did not stop it with its fw4 rules taken out; calls:\n%s", calls)
			}
			if _, err := os.Stat(runDir); err == nil {
				t.Error("removing airelay left /var/run/airelay (the API keys)")
			}
			if out, _ := remove("airelay", postrm, []string{"PKG_UPGRADE=1"}, "upgrade", "0.1.0-r2"); out != "" {
				t.Errorf("postrm on an upgrade says %q", out)
			}
			out, _ := remove("airelay", postrm, nil, "remove")
			for _, want := range []string{
				"/etc/config/airelay_keys (the API keys):  rm /etc/config/airelay_keys",
				"/etc/config/airelay_keys.saved (keys migrate-keys set aside):  rm /etc/config/airelay_keys.saved",
				"/etc/airelay/ (the usage history, history.json, and the last valid config):  rm -r /etc/airelay",
				"/etc/config/airelay (edited, so kept):  rm /etc/config/airelay (apk: apk del --purge airelay removes it)",
				"the user and group airelay:  sed -i '/^airelay:/d' /etc/passwd /etc/shadow /etc/group",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("airelay's %s does not say %q:\n%s", postrm, want, out)
				}
			}
			// nothing left: nothing said
			for _, p := range []string{"etc/config/airelay_keys", "etc/config/airelay_keys.saved", "etc/airelay", "etc/config/airelay"} {
				os.RemoveAll(filepath.Join(root, p))
			}
			os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/ash\n"), 0o644)
			if out, _ := remove("airelay", postrm, nil, "remove"); out != "" {
				t.Errorf("with nothing left the %s says %q", postrm, out)
			}
		})
	}
}
