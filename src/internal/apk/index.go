package apk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sort"
)

// WriteIndex writes a repository index (packages.adb) for the given .apk files, as `apk mkndx`
// does: each package's info object, with its file size and, as "hashes", the SHA-256 of its ADB
// block (apk checks a downloaded package against it, so a signed index vouches for unsigned
// packages), sorted by name and version; signed with key when key is not nil. apk finds each
// package next to the index as name-version.apk.
func WriteIndex(w io.Writer, description string, files [][]byte, key *Key) error {
	type entry struct {
		name, version string
		val           Val
	}
	b := newBuilder()
	var es []entry
	for i, f := range files {
		c, err := Read(f)
		if err != nil {
			return fmt.Errorf("apk: index: package %d: %w", i+1, err)
		}
		if c.Schema != SchemaPackage {
			return fmt.Errorf("apk: index: package %d: schema %08x is not a package", i+1, c.Schema)
		}
		root, err := c.Obj(c.Root())
		if err != nil {
			return err
		}
		info, err := c.Obj(field(root, pkgInfo))
		if err != nil {
			return err
		}
		name, err := c.Blob(field(info, piName))
		if err != nil {
			return err
		}
		version, err := c.Blob(field(info, piVersion))
		if err != nil {
			return err
		}
		if len(name) == 0 || len(version) == 0 {
			return fmt.Errorf("apk: index: package %d has no name or version", i+1)
		}
		out := make([]Val, piMax)
		memo := map[Val]Val{}
		for j := 1; j < len(info) && j < piMax; j++ {
			if out[j], err = copyVal(b, c, info[j], 0, memo); err != nil {
				return fmt.Errorf("apk: index: %s: %w", name, err)
			}
		}
		sum := sha256.Sum256(c.ADB)
		out[piHashes] = b.blob(sum[:])
		out[piFileSize] = b.integer(uint64(len(f)))
		es = append(es, entry{string(name), string(version), b.object(out)})
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].name != es[j].name {
			return es[i].name < es[j].name
		}
		return es[i].version < es[j].version
	})
	for i := 1; i < len(es); i++ {
		if es[i].name == es[i-1].name && es[i].version == es[i-1].version {
			return fmt.Errorf("apk: index: %s-%s given twice", es[i].name, es[i].version)
		}
	}
	var pkgs []Val
	for _, e := range es {
		pkgs = append(pkgs, e.val)
	}
	root := make([]Val, ndxPackages+1)
	root[ndxDescription] = b.str(description)
	root[ndxPackages] = b.array(pkgs)
	adb := b.finish(b.object(root))
	c := appendBlock(header(SchemaIndex), blockADB, adb)
	if key != nil {
		sig, err := key.signatureBlock(SchemaIndex, adb)
		if err != nil {
			return fmt.Errorf("apk: index: sign: %w", err)
		}
		c = appendBlock(c, blockSig, sig)
	}
	out, err := compress(c)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// copyVal writes value v of c into b, with everything it points to. memo holds what was copied
// already, so values shared by many slots are copied once, not once per path to them.
func copyVal(b *builder, c *Container, v Val, depth int, memo map[Val]Val) (Val, error) {
	if depth > 16 {
		return 0, fmt.Errorf("value %08x nested too deep", uint32(v))
	}
	if w, ok := memo[v]; ok {
		return w, nil
	}
	w, err := copyOnce(b, c, v, depth, memo)
	if err == nil {
		memo[v] = w
	}
	return w, err
}

func copyOnce(b *builder, c *Container, v Val, depth int, memo map[Val]Val) (Val, error) {
	switch v.typ() {
	case typeSpecial, typeInt:
		return v, nil
	case typeInt32, typeInt64:
		n, err := c.Int(v)
		if err != nil {
			return 0, err
		}
		return b.integer(n), nil
	case typeBlob8, typeBlob16, typeBlob32:
		p, err := c.Blob(v)
		if err != nil {
			return 0, err
		}
		return b.blob(bytes.Clone(p)), nil
	case typeObject, typeArray:
		o, err := c.Obj(v)
		if err != nil {
			return 0, err
		}
		out := make([]Val, len(o))
		for i := 1; i < len(o); i++ {
			if out[i], err = copyVal(b, c, o[i], depth+1, memo); err != nil {
				return 0, err
			}
		}
		if v.typ() == typeArray {
			return b.array(out[1:]), nil
		}
		return b.object(out), nil
	}
	return 0, fmt.Errorf("value %08x has no type apk knows", uint32(v))
}

// Verify checks that c carries a signature by the public key pub (PEM, as in /etc/apk/keys/).
func Verify(c *Container, pubPEM []byte) error {
	pub, id, err := ParsePublicKey(pubPEM)
	if err != nil {
		return err
	}
	for _, s := range c.Sigs {
		if len(s) >= 18 && bytes.Equal(s[2:18], id[:]) {
			return verifySignature(pub, c.Schema, c.ADB, s)
		}
	}
	return fmt.Errorf("apk: no signature by key %x", id)
}
