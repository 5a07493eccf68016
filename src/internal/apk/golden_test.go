package apk

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden packages in testdata/ from the writer. The .adbdump files beside
// them are not written by this package: they are `apk adbdump` of those files, made with the
// real apk-tools (see testdata/README.md), and the tests hold the reader and Dump to them.
var update = flag.Bool("update", false, "rewrite testdata/*.apk and *.adb from the writer")

// testKeyPEM signs the golden index. A test key, made with `openssl ecparam -name prime256v1
// -genkey` (so it starts with an EC PARAMETERS block); it signs nothing else.
var testKeyPEM = mustRead("testdata/test-key.pem")

func mustRead(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// goldens are the fixed files: a package (unsigned) and an index of it and a second package,
// signed with the test key.
func goldens(t *testing.T) map[string][]byte {
	t.Helper()
	pkg := write(t, sample(), nil)
	p := sample()
	p.Info.Name, p.Info.Arch, p.Scripts = "demo-doc", "noarch", nil
	doc := write(t, p, nil)
	var idx bytes.Buffer
	if err := WriteIndex(&idx, "airelay test feed", [][]byte{pkg, doc}, testKey(t)); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"demo-1.2.3-r4.apk": pkg, "packages.adb": idx.Bytes()}
}

// The writer's output is the golden files' containers byte for byte (compared decompressed, so
// a change in Go's deflate does not count), and Dump renders them as the real `apk adbdump`
// printed them.
func TestGolden(t *testing.T) {
	for name, got := range goldens(t) {
		file := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		gc, err := decompress(got)
		if err != nil {
			t.Fatal(err)
		}
		wc, err := decompress(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gc, wc) {
			t.Errorf("%s: the writer's container differs from the golden file (go test -update rewrites it; then remake the .adbdump with apk-tools)", name)
		}
		c, err := Read(want)
		if err != nil {
			t.Fatal(err)
		}
		dump, err := Dump(c, "UNTRUSTED signature")
		if err != nil {
			t.Fatal(err)
		}
		real, err := os.ReadFile(file + ".adbdump")
		if err != nil {
			t.Fatal(err)
		}
		if dump != string(real) {
			t.Errorf("%s: Dump differs from apk adbdump:\n--- Dump\n%s\n--- apk adbdump\n%s", name, dump, real)
		}
	}
	c, err := Read(mustRead("testdata/packages.adb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(c, mustRead("testdata/test-key.pub.pem")); err != nil {
		t.Errorf("golden index with the test key's public half (as openssl wrote it): %v", err)
	}
}

// FuzzRead: Read and Dump never panic, whatever the bytes; what Read accepts, Dump renders or
// refuses with an error. Found inputs are kept in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"testdata/demo-1.2.3-r4.apk", "testdata/packages.adb"} {
		b := mustRead(name)
		f.Add(b)
		if c, err := decompress(b); err == nil {
			f.Add(c) // uncompressed, so the fuzzer reaches the values quickly
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Read(b)
		if err != nil {
			return
		}
		Dump(c, "OK")
		Inspect(c)
		if c.Schema == SchemaPackage {
			WriteIndex(&bytes.Buffer{}, "", [][]byte{b}, nil)
		}
	})
}
