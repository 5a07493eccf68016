// Package pkg tests what `make ipk` produces and the files it ships, the way a router would
// use them: opkg's unpacking, the ELF each architecture runs, the postinst against an offline
// root, the binaries under qemu-user, the procd init script under busybox with stand-ins for
// procd, dnsmasq and fw4, and the systemd units' socket activation.
package pkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// arches maps each OpenWrt architecture mk/ipk.mk builds to what its binary must be.
var arches = map[string]struct {
	machine string // debug/elf Machine
	little  bool
	class64 bool
	qemu    string
}{
	"mipsel_24kc":              {"EM_MIPS", true, false, "qemu-mipsel-static"},
	"mips_24kc":                {"EM_MIPS", false, false, "qemu-mips-static"},
	"arm_cortex-a7_neon-vfpv4": {"EM_ARM", true, false, "qemu-arm-static"},
	"aarch64_cortex-a53":       {"EM_AARCH64", true, true, "qemu-aarch64-static"},
	"x86_64":                   {"EM_X86_64", true, true, ""},
}

var (
	ipkOnce sync.Once
	ipkErr  error
	ipkOut  []byte
)

// newestSource is the latest modification time of what goes into the packages.
func newestSource(root string) time.Time {
	var newest time.Time
	for _, dir := range []string{"files", "src", "mk", "luci-app/htdocs", "luci-app/root", "go.mod", "go.sum", "Makefile"} {
		filepath.Walk(filepath.Join(root, dir), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
			return nil
		})
	}
	return newest
}

// ipks returns the packages in dist/ by name/architecture (the newest file of each), running
// `make ipk` once when some are missing or older than the sources.
func ipks(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	find := func() map[string]string {
		m := map[string]string{}
		at := map[string]time.Time{}
		files, _ := filepath.Glob(filepath.Join(root, "dist", "*.ipk"))
		for _, f := range files {
			base := strings.TrimSuffix(filepath.Base(f), ".ipk")
			parts := strings.SplitN(base, "_", 3)
			st, err := os.Stat(f)
			if len(parts) != 3 || err != nil {
				continue
			}
			k := parts[0] + "/" + parts[2]
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
		if err != nil || st.ModTime().Before(src) {
			missing = true
		}
	}
	if missing {
		ipkOnce.Do(func() {
			if _, err := exec.LookPath("make"); err != nil {
				ipkErr = err
				return
			}
			cmd := exec.Command("make", "--no-print-directory", "ipk")
			cmd.Dir = root
			ipkOut, ipkErr = cmd.CombinedOutput()
		})
		if ipkErr != nil {
			t.Fatalf("make ipk: %v\n%s", ipkErr, ipkOut)
		}
		t.Logf("make ipk:\n%s", ipkOut)
		m = find()
	}
	return m
}

// member is one tar entry as opkg sees it.
type member struct {
	hdr  *tar.Header
	data []byte
}

// untar reads a gzip'd tar completely. This reader shares nothing with package ipk.
func untar(t *testing.T, gz []byte) []member {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() && zr.Header.ModTime.Unix() != 0 {
		t.Errorf("gzip header carries a name or time (%q %v): not reproducible", zr.Header.Name, zr.Header.ModTime)
	}
	tr := tar.NewReader(zr)
	var ms []member
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{h, b})
	}
	return ms
}

// ipkParts unpacks an .ipk as opkg does: the outer tar.gz, then control and data.
type ipkParts struct {
	outer         []member
	control, data []member
	dataRaw       []byte // data.tar.gz
	controlRaw    []byte
}

func openIPK(t *testing.T, path string) *ipkParts {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &ipkParts{outer: untar(t, raw)}
	for _, m := range p.outer {
		switch m.hdr.Name {
		case "./data.tar.gz":
			p.dataRaw = m.data
			p.data = untar(t, m.data)
		case "./control.tar.gz":
			p.controlRaw = m.data
			p.control = untar(t, m.data)
		}
	}
	if p.data == nil || p.control == nil {
		t.Fatalf("%s: no data.tar.gz or control.tar.gz", path)
	}
	return p
}

func find(ms []member, name string) *member {
	for i := range ms {
		if ms[i].hdr.Name == name {
			return &ms[i]
		}
	}
	return nil
}

// controlFields parses the control file into ordered key/value pairs.
func controlFields(t *testing.T, b []byte) ([]string, map[string]string) {
	t.Helper()
	var keys []string
	m := map[string]string{}
	last := ""
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(l, " ") {
			m[last] += "\n" + l
			continue
		}
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("control line %q", l)
		}
		keys = append(keys, k)
		m[k] = v
		last = k
	}
	return keys, m
}

func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Skipf("%s is not installed (.ci/deps installs it)", prog)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fileOf(p *ipkParts, name string) ([]byte, error) {
	m := find(p.data, name)
	if m == nil {
		return nil, fmt.Errorf("no %s in data.tar.gz", name)
	}
	return m.data, nil
}

// syncBuf is an output sink safe to read while a process writes to it.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) WriteString(v string) (int, error) { return s.Write([]byte(v)) }

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
