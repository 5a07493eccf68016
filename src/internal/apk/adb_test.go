package apk

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func le32(b []byte, off uint32) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

// Blobs carry an 8-, 16- or 32-bit length prefix chosen by their length and are aligned to it;
// the empty blob is no value.
func TestBlobEncoding(t *testing.T) {
	b := newBuilder()
	if v := b.blob(nil); v != 0 {
		t.Errorf("empty blob: %08x, want 0 (null)", uint32(v))
	}
	v8 := b.str("abc")
	if v8.typ() != typeBlob8 || v8.value() != 8 || !bytes.Equal(b.buf[8:12], []byte{3, 'a', 'b', 'c'}) {
		t.Errorf("blob8 %08x %x", uint32(v8), b.buf[8:])
	}
	v16 := b.blob(bytes.Repeat([]byte{'x'}, 300))
	if v16.typ() != typeBlob16 || v16.value()%2 != 0 || binary.LittleEndian.Uint16(b.buf[v16.value():]) != 300 {
		t.Errorf("blob16 %08x", uint32(v16))
	}
	v32 := b.blob(bytes.Repeat([]byte{'y'}, 70000))
	if v32.typ() != typeBlob32 || v32.value()%4 != 0 || le32(b.buf, v32.value()) != 70000 {
		t.Errorf("blob32 %08x", uint32(v32))
	}
	if again := b.str("abc"); again != v8 {
		t.Errorf("identical blob written twice: %08x and %08x", uint32(v8), uint32(again))
	}
	// padding is zeros
	for i := 12; i < int(v16.value()); i++ {
		if b.buf[i] != 0 {
			t.Errorf("padding byte %d is %#x", i, b.buf[i])
		}
	}
}

// Integers below 2^28 are inline; larger ones are stored, 4 or 8 bytes, aligned to 4.
func TestIntEncoding(t *testing.T) {
	b := newBuilder()
	b.str("a") // leaves the buffer unaligned
	if v := b.integer(0x0fffffff); uint32(v) != 0x1fffffff {
		t.Errorf("inline int: %08x", uint32(v))
	}
	v32 := b.integer(0x10000000)
	if v32.typ() != typeInt32 || v32.value()%4 != 0 || le32(b.buf, v32.value()) != 0x10000000 {
		t.Errorf("int32: %08x", uint32(v32))
	}
	v64 := b.integer(1 << 33)
	if v64.typ() != typeInt64 || v64.value()%4 != 0 || binary.LittleEndian.Uint64(b.buf[v64.value():]) != 1<<33 {
		t.Errorf("int64: %08x", uint32(v64))
	}
	c := &Container{ADB: b.finish(0)}
	for v, want := range map[Val]uint64{Val(0x1fffffff): 0x0fffffff, v32: 0x10000000, v64: 1 << 33, 0: 0} {
		if got, err := c.Int(v); err != nil || got != want {
			t.Errorf("Int(%08x) = %d, %v; want %d", uint32(v), got, err, want)
		}
	}
}

// Objects put field i in slot i after a count that includes slot 0, drop trailing empty
// fields, and are aligned to 4; arrays drop empty items; an empty object is no value.
func TestObjectEncoding(t *testing.T) {
	b := newBuilder()
	b.str("a")
	o := b.object([]Val{0, Val(typeInt | 7), 0, Val(typeInt | 9), 0, 0})
	if o.typ() != typeObject || o.value()%4 != 0 {
		t.Fatalf("object %08x", uint32(o))
	}
	off := o.value()
	if n := le32(b.buf, off); n != 4 {
		t.Errorf("count %d, want 4 (slot 0, three fields; trailing nulls dropped)", n)
	}
	if le32(b.buf, off+4) != typeInt|7 || le32(b.buf, off+8) != 0 || le32(b.buf, off+12) != typeInt|9 {
		t.Errorf("slots %x", b.buf[off:off+16])
	}
	if v := b.object([]Val{0, 0, 0}); v != 0 {
		t.Errorf("empty object %08x, want null", uint32(v))
	}
	a := b.array([]Val{Val(typeInt | 1), 0, Val(typeInt | 2)})
	c := &Container{ADB: b.finish(o)}
	items, err := c.Obj(a)
	if err != nil || a.typ() != typeArray || len(items) != 3 || items[1] != Val(typeInt|1) || items[2] != Val(typeInt|2) {
		t.Errorf("array %08x: %v %v", uint32(a), items, err)
	}
	if c.Root() != o {
		t.Errorf("root %08x, want %08x", uint32(c.Root()), uint32(o))
	}
}

// A block is its length word (type in the top two bits, length including the word), the
// payload, and zeros up to a multiple of 8.
func TestBlockFraming(t *testing.T) {
	for n := 0; n < 20; n++ {
		out := appendBlock(nil, blockData, bytes.Repeat([]byte{0xaa}, n))
		if len(out)%8 != 0 || len(out) < 4+n || len(out) >= 4+n+8 {
			t.Errorf("payload %d: block of %d bytes", n, len(out))
		}
		if w := le32(out, 0); w>>30 != blockData || w&0x3fffffff != uint32(4+n) {
			t.Errorf("payload %d: header %08x", n, w)
		}
	}
}

func TestCompression(t *testing.T) {
	c := append(header(SchemaPackage), appendBlock(nil, blockADB, make([]byte, 8))...)
	z, err := compress(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(z[:4]) != "ADBd" {
		t.Errorf("magic %q, want ADBd", z[:4])
	}
	for _, f := range [][]byte{z, c} {
		got, err := decompress(f)
		if err != nil || !bytes.Equal(got, c) {
			t.Errorf("decompress(%q…): %v", f[:4], err)
		}
	}
	if _, err := decompress([]byte("ADBc\x02\x00xxxx")); err == nil || !strings.Contains(err.Error(), "only deflate") {
		t.Errorf("zstd file: %v, want an error naming the algorithm", err)
	}
	if _, err := Read([]byte("PK\x03\x04")); err == nil || !strings.Contains(err.Error(), "not an ADB file") {
		t.Errorf("zip file: %v", err)
	}
}

func sample() *Package {
	p := &Package{
		Info: Info{Name: "demo", Version: "1.2.3-r4", Arch: "x86_64", Description: "A demo: two files and a link.",
			License: "Apache-2.0", Origin: "package/demo", Maintainer: "airelay developers", URL: "https://example.org/demo",
			Depends: []string{"libc", "airelay"}, Provides: []string{"demo-any"}},
		MTime: time.Unix(1700000000, 0),
	}
	p.AddFile("/usr/bin/demo", 0o755, []byte("#!/bin/sh\necho demo\n"))
	p.AddFile("/etc/config/demo", 0o600, []byte("config demo 'main'\n"))
	p.AddLink("/usr/share/demo.nft", "/var/run/demo.nft")
	if err := p.OpenWrt([]string{"/etc/config/demo"}, "demo:demo"); err != nil {
		panic(err)
	}
	p.Scripts = OpenWrtScripts("demo", []byte("#!/bin/sh\necho installed\n"), nil)
	return p
}

func write(t *testing.T, p *Package, k *Key) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Write(&buf, k); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Same inputs, same bytes: the order files were added, the map of scripts and the clock do
// not leak, and a signature is the same every time.
func TestReproducible(t *testing.T) {
	k := testKey(t)
	a := write(t, sample(), k)
	p := sample()
	p.Files[0], p.Files[1] = p.Files[1], p.Files[0]
	if b := write(t, p, k); !bytes.Equal(a, b) {
		t.Error("two writes of the same package differ")
	}
}

// What the reader sees in a written package: the info fields, directories in order with their
// files, the unique id apk mkpkg computes, and each file's bytes in a data block pointing at it.
func TestRoundTrip(t *testing.T) {
	raw := write(t, sample(), nil)
	c, err := Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Schema != SchemaPackage || len(c.Sigs) != 0 {
		t.Fatalf("schema %08x, %d signatures", c.Schema, len(c.Sigs))
	}
	root, _ := c.Obj(c.Root())
	info, _ := c.Obj(field(root, pkgInfo))
	for i, want := range map[int]string{piName: "demo", piVersion: "1.2.3-r4", piArch: "x86_64", piLicense: "Apache-2.0", piOrigin: "package/demo"} {
		if got, _ := c.Blob(field(info, i)); string(got) != want {
			t.Errorf("info field %d: %q, want %q", i, got, want)
		}
	}
	// the unique id: SHA-256 of the ADB block with the id zeroed, cut to 20 bytes
	id, _ := c.Blob(field(info, piHashes))
	zeroed := bytes.Clone(c.ADB)
	off := field(info, piHashes).value() + 1
	copy(zeroed[off:off+uniqueIDLen], make([]byte, uniqueIDLen))
	if sum := sha256.Sum256(zeroed); !bytes.Equal(id, sum[:uniqueIDLen]) {
		t.Errorf("unique id %x, want %x", id, sum[:uniqueIDLen])
	}
	paths, _ := c.Obj(field(root, pkgPaths))
	var names []string
	files := map[[2]uint32]string{}
	for i, pv := range paths[1:] {
		d, _ := c.Obj(pv)
		n, _ := c.Blob(field(d, diName))
		names = append(names, string(n))
		fs, _ := c.Obj(field(d, diFiles))
		for j, fv := range fs[1:] {
			f, _ := c.Obj(fv)
			fn, _ := c.Blob(field(f, fiName))
			files[[2]uint32{uint32(i + 1), uint32(j + 1)}] = string(n) + "/" + string(fn)
		}
	}
	want := ",etc,etc/config,lib,lib/apk,lib/apk/packages,usr,usr/bin,usr/share"
	if strings.Join(names, ",") != want {
		t.Errorf("directories %q, want %q", strings.Join(names, ","), want)
	}
	got := map[string]string{}
	for _, d := range c.Data {
		got[files[[2]uint32{d.Path, d.File}]] = string(d.Data)
	}
	if got["usr/bin/demo"] != "#!/bin/sh\necho demo\n" || got["etc/config/demo"] != "config demo 'main'\n" {
		t.Errorf("data blocks: %q", got)
	}
	if l := got["lib/apk/packages/demo.list"]; l != "/etc/config/demo\n/lib/apk/packages/demo.rusers\n/usr/bin/demo\n/usr/share/demo.nft\n" {
		t.Errorf("demo.list %q", l)
	}
	if s := got["lib/apk/packages/demo.conffiles_static"]; !strings.HasPrefix(s, "/etc/config/demo ") || len(s) != len("/etc/config/demo ")+64+1 {
		t.Errorf("demo.conffiles_static %q", s)
	}
}

func testKey(t *testing.T) *Key {
	t.Helper()
	k, err := ParseKey(testKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A package and an index signed with an ECDSA or RSA key verify with its public key and not
// with another.
func TestSignVerify(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := NewKey(other)
	otherPub, _ := otherKey.PublicPEM()
	for name, priv := range map[string]any{"ecdsa": ec, "rsa": rk} {
		k, err := NewKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := k.PublicPEM()
		pkg := write(t, sample(), k)
		var idx bytes.Buffer
		if err := WriteIndex(&idx, "test", [][]byte{pkg}, k); err != nil {
			t.Fatal(err)
		}
		for what, f := range map[string][]byte{"package": pkg, "index": idx.Bytes()} {
			c, err := Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(c, pub); err != nil {
				t.Errorf("%s %s: %v", name, what, err)
			}
			if err := Verify(c, otherPub); err == nil {
				t.Errorf("%s %s verifies with another key", name, what)
			}
			c.ADB[len(c.ADB)-1] ^= 1
			if err := Verify(c, pub); err == nil {
				t.Errorf("%s %s verifies after a change", name, what)
			}
		}
	}
	if _, err := NewKey(mustP384(t)); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Errorf("P-384 key: %v, want an error naming P-256", err)
	}
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The index holds each package's info with its file size and the SHA-256 of its ADB block,
// sorted by name, and refuses the same package twice.
func TestIndex(t *testing.T) {
	a := write(t, sample(), nil)
	p := sample()
	p.Info.Name = "another"
	b := write(t, p, nil)
	var idx bytes.Buffer
	if err := WriteIndex(&idx, "test feed", [][]byte{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	c, err := Read(idx.Bytes())
	if err != nil || c.Schema != SchemaIndex {
		t.Fatalf("%v, schema %08x", err, c.Schema)
	}
	root, _ := c.Obj(c.Root())
	pkgs, _ := c.Obj(field(root, ndxPackages))
	if len(pkgs) != 3 {
		t.Fatalf("%d packages", len(pkgs)-1)
	}
	for i, want := range [][]byte{b, a} {
		info, _ := c.Obj(pkgs[i+1])
		name, _ := c.Blob(field(info, piName))
		size, _ := c.Int(field(info, piFileSize))
		hash, _ := c.Blob(field(info, piHashes))
		pc, _ := Read(want)
		sum := sha256.Sum256(pc.ADB)
		if size != uint64(len(want)) || !bytes.Equal(hash, sum[:]) {
			t.Errorf("%s: size %d hash %x, want %d %x", name, size, hash, len(want), sum)
		}
	}
	if err := WriteIndex(&idx, "", [][]byte{a, a}, nil); err == nil {
		t.Error("the same package twice: no error")
	}
}

func TestValidate(t *testing.T) {
	for _, v := range []string{"0.1.0-r12", "1.2.3", "1.2.3_rc1-r0", "2024.01.02~abc123-r1"} {
		if !ValidVersion(v) {
			t.Errorf("%q: not valid", v)
		}
	}
	for _, v := range []string{"0.1.0-12", "v0.1.0", "1:0.1.0-r1", "0.1.0-3-gabc", ""} {
		if ValidVersion(v) {
			t.Errorf("%q: valid", v)
		}
	}
	p := sample()
	p.Info.Version = "0.1.0-12"
	if err := p.Write(&bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "0.1.0-12") {
		t.Errorf("bad version: %v", err)
	}
	p = sample()
	if err := p.OpenWrt([]string{"/usr/share/x"}, ""); err == nil || !strings.Contains(err.Error(), "/etc/") {
		t.Errorf("conffile outside /etc: %v", err)
	}
}

// With a gzip program, the deflate stream is gzip's and reads back the same.
func TestGzipCommand(t *testing.T) {
	gz, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("gzip is not installed")
	}
	defer func(old string) { GzipCommand = old }(GzipCommand)
	GzipCommand = ""
	plain := write(t, sample(), nil)
	GzipCommand = gz
	viaGzip := write(t, sample(), nil)
	a, err := decompress(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decompress(viaGzip)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || string(viaGzip[:4]) != "ADBd" {
		t.Error("gzip's stream does not decompress to the same container")
	}
}

// Unpack gives back what was written: the same files, modes, bytes, links and scripts, and
// writing the result again gives the same ADB block.
func TestUnpack(t *testing.T) {
	raw := write(t, sample(), nil)
	c, err := Read(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Unpack(c)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]File{}
	for _, f := range sample().Files {
		want[f.Path] = f
	}
	for _, f := range p.Files {
		if f.Dir {
			continue
		}
		w, ok := want[f.Path]
		if !ok || w.Mode != f.Mode || !bytes.Equal(w.Data, f.Data) || w.Link != f.Link {
			t.Errorf("%s: %+v, want %+v", f.Path, f, w)
		}
		delete(want, f.Path)
	}
	if len(want) != 0 {
		t.Errorf("not unpacked: %v", want)
	}
	p.MTime = sample().MTime
	again, err := Read(write(t, p, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ADB, c.ADB) {
		t.Error("writing the unpacked package gives another ADB block")
	}
}
