package apk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
)

// PkgInfo is a package's info object, as a package or an index holds it.
type PkgInfo struct {
	Name          string   `json:"name"`
	Version       string   `json:"version"`
	Hashes        string   `json:"hashes"` // hex
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
}

// Entry is a directory, file or symlink of a package.
type Entry struct {
	Path   string `json:"path"` // absolute: "/usr/sbin/airelay", "/" for the root
	Dir    bool   `json:"dir,omitempty"`
	Mode   uint64 `json:"mode"`
	User   string `json:"user"`
	Group  string `json:"group"`
	Size   uint64 `json:"size,omitempty"`
	Hash   string `json:"hash,omitempty"`   // the file's "hash" field, hex
	Data   string `json:"data,omitempty"`   // SHA-256 of its data block's bytes, hex
	Target string `json:"target,omitempty"` // symlink target
}

// Contents is what Inspect finds in a package or an index.
type Contents struct {
	Schema     string            `json:"schema"` // "pckg" or "indx"
	ADBSHA256  string            `json:"adb_sha256"`
	Signatures int               `json:"signatures"`
	Info       *PkgInfo          `json:"info,omitempty"`
	Files      []Entry           `json:"files,omitempty"`
	Scripts    map[string]string `json:"scripts,omitempty"`
	Packages   []PkgInfo         `json:"packages,omitempty"` // an index's
}

// Inspect reads a package or an index into plain values, for tools and tests that check what
// a file holds without apk-tools.
func Inspect(c *Container) (*Contents, error) {
	sum := sha256.Sum256(c.ADB)
	out := &Contents{ADBSHA256: hex.EncodeToString(sum[:]), Signatures: len(c.Sigs)}
	root, err := c.Obj(c.Root())
	if err != nil {
		return nil, err
	}
	switch c.Schema {
	case SchemaIndex:
		out.Schema = "indx"
		pkgs, err := c.Obj(field(root, ndxPackages))
		if err != nil {
			return nil, err
		}
		for _, pv := range pkgs[1:] {
			pi, err := readInfo(c, pv)
			if err != nil {
				return nil, err
			}
			out.Packages = append(out.Packages, *pi)
		}
		return out, nil
	case SchemaPackage:
		out.Schema = "pckg"
	default:
		return nil, fmt.Errorf("apk: schema %08x is neither a package nor an index", c.Schema)
	}
	if out.Info, err = readInfo(c, field(root, pkgInfo)); err != nil {
		return nil, err
	}
	data := map[[2]uint32][]byte{}
	for _, d := range c.Data {
		data[[2]uint32{d.Path, d.File}] = d.Data
	}
	r := reader{c: c}
	paths := r.obj(field(root, pkgPaths))
	for i, pv := range paths[1:] {
		d := r.obj(pv)
		name := "/" + r.str(field(d, diName))
		acl := r.obj(field(d, diACL))
		out.Files = append(out.Files, Entry{Path: name, Dir: true, Mode: r.num(field(acl, aclMode)), User: r.str(field(acl, aclUser)), Group: r.str(field(acl, aclGroup))})
		files := r.obj(field(d, diFiles))
		for j, fv := range files[1:] {
			f := r.obj(fv)
			fa := r.obj(field(f, fiACL))
			e := Entry{Path: path.Join(name, r.str(field(f, fiName))), Mode: r.num(field(fa, aclMode)),
				User: r.str(field(fa, aclUser)), Group: r.str(field(fa, aclGroup)), Size: r.num(field(f, fiSize)),
				Hash: hex.EncodeToString(r.blob(field(f, fiHashes)))}
			if t := r.blob(field(f, fiTarget)); len(t) > 2 {
				e.Target = string(t[2:])
			}
			if b, ok := data[[2]uint32{uint32(i + 1), uint32(j + 1)}]; ok {
				s := sha256.Sum256(b)
				e.Data = hex.EncodeToString(s[:])
			}
			out.Files = append(out.Files, e)
		}
	}
	scripts := r.obj(field(root, pkgScripts))
	for i, name := range scriptNames {
		if s := r.blob(field(scripts, i+1)); s != nil {
			if out.Scripts == nil {
				out.Scripts = map[string]string{}
			}
			out.Scripts[name] = string(s)
		}
	}
	return out, r.err
}

func readInfo(c *Container, v Val) (*PkgInfo, error) {
	r := reader{c: c}
	o := r.obj(v)
	deps := func(i int) []string {
		var out []string
		for _, dv := range r.obj(field(o, i))[1:] {
			d := r.obj(dv)
			s := r.str(field(d, depName))
			if ver := r.str(field(d, 2)); ver != "" {
				s += "=" + ver
			}
			out = append(out, s)
		}
		return out
	}
	pi := &PkgInfo{
		Name: r.str(field(o, piName)), Version: r.str(field(o, piVersion)), Hashes: hex.EncodeToString(r.blob(field(o, piHashes))),
		Description: r.str(field(o, piDescription)), Arch: r.str(field(o, piArch)), License: r.str(field(o, piLicense)),
		Origin: r.str(field(o, piOrigin)), Maintainer: r.str(field(o, piMaintainer)), URL: r.str(field(o, piURL)),
		InstalledSize: r.num(field(o, piInstalledSize)), FileSize: r.num(field(o, piFileSize)),
		Depends: deps(piDepends), Provides: deps(piProvides),
	}
	return pi, r.err
}

// reader reads values and keeps the first error, so a walk over a file reads plainly.
type reader struct {
	c   *Container
	err error
}

func (r *reader) obj(v Val) []Val {
	o, err := r.c.Obj(v)
	if err != nil {
		r.fail(err)
		return []Val{0}
	}
	return o
}

func (r *reader) blob(v Val) []byte {
	b, err := r.c.Blob(v)
	r.fail(err)
	return b
}

func (r *reader) str(v Val) string { return string(r.blob(v)) }

func (r *reader) num(v Val) uint64 {
	n, err := r.c.Int(v)
	r.fail(err)
	return n
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Unpack is the package a file holds, as the writer takes one: info, every directory, file and
// symlink with its mode and bytes, and the scripts. Writing it again gives the same ADB block
// when nothing in the file came from elsewhere than this package's writer.
func Unpack(c *Container) (*Package, error) {
	ct, err := Inspect(c)
	if err != nil {
		return nil, err
	}
	if ct.Info == nil {
		return nil, fmt.Errorf("apk: schema %s is not a package", ct.Schema)
	}
	data := map[[2]uint32][]byte{}
	for _, d := range c.Data {
		data[[2]uint32{d.Path, d.File}] = d.Data
	}
	i := ct.Info
	p := &Package{Info: Info{Name: i.Name, Version: i.Version, Description: i.Description, Arch: i.Arch, License: i.License,
		Origin: i.Origin, Maintainer: i.Maintainer, URL: i.URL, Depends: i.Depends, Provides: i.Provides}}
	dirNo, fileNo := uint32(0), uint32(0)
	for _, e := range ct.Files {
		if e.Dir {
			dirNo, fileNo = dirNo+1, 0
			if e.Path != "/" {
				p.Files = append(p.Files, File{Path: e.Path, Mode: fs.FileMode(e.Mode).Perm(), Dir: true})
			}
			continue
		}
		fileNo++
		f := File{Path: e.Path, Mode: fs.FileMode(e.Mode).Perm(), Link: e.Target}
		if e.Target == "" {
			f.Data = data[[2]uint32{dirNo, fileNo}]
			if uint64(len(f.Data)) != e.Size {
				return nil, fmt.Errorf("apk: %s: %d bytes of data for a file of %d", e.Path, len(f.Data), e.Size)
			}
			if sum := sha256.Sum256(f.Data); hex.EncodeToString(sum[:]) != e.Hash {
				return nil, fmt.Errorf("apk: %s: data does not match its hash", e.Path)
			}
		}
		p.Files = append(p.Files, f)
	}
	if len(ct.Scripts) > 0 {
		p.Scripts = map[string][]byte{}
		for k, v := range ct.Scripts {
			p.Scripts[k] = []byte(v)
		}
	}
	return p, nil
}
