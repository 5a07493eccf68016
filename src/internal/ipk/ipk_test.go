package ipk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"
)

func sample() *Package {
	p := &Package{
		Control: Control{Package: "demo", Version: "1.2.3-r4", Architecture: "all", Depends: []string{"libc", "airelay"},
			Description: "A demo.\nSecond line.\n\nAfter a blank."},
		Conffiles: []string{"/etc/config/demo"},
		Scripts:   map[string][]byte{"postinst": []byte("#!/bin/sh\nexit 0\n"), "prerm": []byte("#!/bin/sh\nexit 0\n")},
		MTime:     time.Unix(1700000000, 0),
	}
	p.AddFile("/usr/bin/demo", 0o755, []byte("bin"))
	p.AddFile("/etc/config/demo", 0o600, []byte("config demo\n"))
	p.AddLink("/usr/share/demo.nft", "/var/run/demo.nft")
	return p
}

// Same inputs, same bytes: the map of scripts, the order files were added, the clock do not leak.
func TestReproducible(t *testing.T) {
	var a, b bytes.Buffer
	if err := sample().Write(&a); err != nil {
		t.Fatal(err)
	}
	p := sample()
	p.Files[0], p.Files[2] = p.Files[2], p.Files[0]
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds of the same package differ")
	}
}

func TestControlText(t *testing.T) {
	got := string(sample().Control.text(42))
	want := "Package: demo\nVersion: 1.2.3-r4\nDepends: libc, airelay\nArchitecture: all\nInstalled-Size: 42\n" +
		"Description: A demo.\n Second line.\n .\n After a blank.\n"
	if got != want {
		t.Errorf("control:\n%s\nwant\n%s", got, want)
	}
}

func TestRejects(t *testing.T) {
	for name, mod := range map[string]func(*Package){
		"git describe version": func(p *Package) { p.Control.Version = "v0.1.0-3-gabcdef" },
		"hash version":         func(p *Package) { p.Control.Version = "dev" },
		"upper-case name":      func(p *Package) { p.Control.Package = "Demo" },
		"conffile not shipped": func(p *Package) { p.Conffiles = []string{"/etc/config/other"} },
		"relative path":        func(p *Package) { p.AddFile("usr/bin/x", 0o755, nil) },
		"duplicate":            func(p *Package) { p.AddFile("/usr/bin/demo", 0o755, nil) },
		"unknown script":       func(p *Package) { p.Scripts["postinstall"] = nil },
		"no description":       func(p *Package) { p.Control.Description = " " },
	} {
		p := sample()
		mod(p)
		if err := p.Write(&bytes.Buffer{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, v := range []string{"0.1.0-r22", "1:2.0-1", "2024.01.05~abc12-3", "1.0"} {
		if !ValidVersion(v) {
			t.Errorf("%s rejected", v)
		}
	}
}

func TestTreeOrder(t *testing.T) {
	es := tree([]entry{{name: "usr/sbin/x"}, {name: "etc/config/a"}, {name: "etc/a-b"}, {name: "etc/init.d/x"}})
	var names []string
	for _, e := range es {
		names = append(names, e.name)
	}
	want := ". etc etc/a-b etc/config etc/config/a etc/init.d etc/init.d/x usr usr/sbin usr/sbin/x"
	if strings.Join(names, " ") != want {
		t.Errorf("order %v", names)
	}
}

// A Packages stanza is the control file with Filename, Size and SHA256sum before Description,
// and an empty line after it.
func TestIndexStanza(t *testing.T) {
	var buf bytes.Buffer
	if err := sample().Write(&buf); err != nil {
		t.Fatal(err)
	}
	st, err := IndexStanza("demo_1.2.3-r4_all.ipk", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	want := fmt.Sprintf("Filename: demo_1.2.3-r4_all.ipk\nSize: %d\nSHA256sum: %x\nDescription: A demo.\n", buf.Len(), sum)
	if !strings.HasPrefix(string(st), "Package: demo\n") || !strings.Contains(string(st), want) || !strings.HasSuffix(string(st), "\n\n") {
		t.Errorf("stanza:\n%s", st)
	}
	if _, err := IndexStanza("x.ipk", []byte("not a package")); err == nil || !strings.Contains(err.Error(), "x.ipk") {
		t.Errorf("garbage: %v", err)
	}
}
