package main

import (
	"cmp"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strings"
)

// What each Go package costs in a binary, from the symbol table of an unstripped build (the
// same build as the shipped one, without -s -w): `airbench size BINARY`, `make size`, and the
// Footprint section of BENCHMARKS.md.
//
// A symbol's bytes go to the package its name starts with (net/http.(*Transport).dialConn,
// type:net/http.Header, go:itab.*net/http.Transport,… go to net/http). Two tables have no
// per-package symbols and are shared out in proportion to each package's machine code: the
// function metadata (.gopclntab: names, PC tables, file lines) and the funcdata blob go:func.*
// (stack maps). Rodata without a named symbol (string literals, most type descriptors) stays
// unattributed: its own row. .bss and .noptrbss take no room in the file and are left out.

// PkgSize is one package's bytes in the file.
type PkgSize struct {
	Package string `json:"package"`
	Text    int64  `json:"text"`   // machine code
	Rodata  int64  `json:"rodata"` // read-only data with a symbol (tables, type descriptors, itabs)
	Data    int64  `json:"data"`   // initialised data (.data, .noptrdata)
	Meta    int64  `json:"meta"`   // its share of .gopclntab and go:func.*, by machine code
	Total   int64  `json:"total"`
}

// SizeTable is a binary's sizes by package.
type SizeTable struct {
	Binary       string     `json:"binary"`
	FileBytes    int64      `json:"file_bytes"`   // the unstripped file
	LoadedBytes  int64      `json:"loaded_bytes"` // the sections a stripped file keeps
	Unattributed int64      `json:"unattributed_rodata"`
	Packages     []*PkgSize `json:"packages"`
}

// symbolPackage returns the Go package a symbol belongs to, or "" when its name carries none.
func symbolPackage(name string) string {
	switch {
	case strings.HasPrefix(name, "go:itab."):
		// go:itab.*pkg.T,iface: the concrete type's package.
		name, _, _ = strings.Cut(strings.TrimPrefix(strings.TrimPrefix(name, "go:itab."), "*"), ",")
	case strings.HasPrefix(name, "type:"):
		name = strings.TrimLeft(strings.TrimPrefix(name, "type:"), "*")
		if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
			return "" // unnamed composite types: []x, map[…]…, func(…), struct {…}
		}
	case strings.HasPrefix(name, "go:"), strings.HasPrefix(name, "_"):
		return ""
	}
	// The package path ends at the first '.' after its last '/'; generic arguments ([…]) and
	// receivers ((*T)) come after it and may hold slashes of their own.
	head := name
	if i := strings.IndexAny(head, "[("); i >= 0 {
		head = head[:i]
	}
	slash := strings.LastIndexByte(head, '/')
	dot := strings.IndexByte(head[slash+1:], '.')
	if dot < 0 || strings.ContainsRune(head[:slash+1+dot], ' ') {
		return "" // no package, or a method of an unnamed struct type
	}
	return head[:slash+1+dot]
}

// packageSizes reads the symbol table of an unstripped Go ELF binary.
func packageSizes(path string) (*SizeTable, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("%s: no symbol table (a stripped build: build it without -s -w)", path)
		}
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	t := &SizeTable{Binary: path, FileBytes: st.Size()}
	kind := map[int]string{}
	var pclntab, rodataSec int64
	for i, s := range f.Sections {
		switch s.Name {
		case ".text":
			kind[i] = "text"
		case ".rodata", ".typelink", ".itablink":
			kind[i] = "rodata"
			if s.Name == ".rodata" {
				rodataSec = int64(s.Size)
			}
		case ".data", ".noptrdata", ".go.buildinfo", ".go.fipsinfo", ".go.module":
			kind[i] = "data"
		case ".gopclntab":
			pclntab = int64(s.Size)
		}
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS {
			t.LoadedBytes += int64(s.Size)
		}
	}
	by := map[string]*PkgSize{}
	var funcdata, text, rodataSyms int64
	for _, s := range syms {
		k, ok := kind[int(s.Section)]
		if !ok || s.Size == 0 {
			continue
		}
		if s.Name == "go:func.*" {
			funcdata += int64(s.Size)
			continue
		}
		pkg := symbolPackage(s.Name)
		if pkg == "" {
			pkg = "(no package: runtime tables, unnamed types)"
		}
		p := by[pkg]
		if p == nil {
			p = &PkgSize{Package: pkg}
			by[pkg] = p
		}
		switch k {
		case "text":
			p.Text += int64(s.Size)
			text += int64(s.Size)
		case "rodata":
			p.Rodata += int64(s.Size)
			rodataSyms += int64(s.Size)
		case "data":
			p.Data += int64(s.Size)
		}
	}
	meta := pclntab + funcdata
	for _, p := range by {
		if text > 0 {
			p.Meta = meta * p.Text / text
		}
		p.Total = p.Text + p.Rodata + p.Data + p.Meta
		t.Packages = append(t.Packages, p)
	}
	// String literals and the type descriptors the linker packs without a symbol of their own.
	t.Unattributed = max(0, rodataSec-funcdata-rodataSyms)
	slices.SortFunc(t.Packages, func(a, b *PkgSize) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), strings.Compare(a.Package, b.Package))
	})
	return t, nil
}

// groupOf folds packages into the groups the size table is read by: the standard library's
// crypto, the runtime and its internals, airelay's own packages, each module.
func groupOf(pkg string) string {
	switch {
	case strings.HasPrefix(pkg, "github.com/airelay/airelay/"):
		return strings.TrimPrefix(pkg, "github.com/airelay/airelay/")
	case strings.HasPrefix(pkg, "crypto/"), pkg == "crypto":
		if strings.HasPrefix(pkg, "crypto/tls") || strings.HasPrefix(pkg, "crypto/x509") {
			return pkg
		}
		return "crypto/… (ciphers, curves, hashes, fips140)"
	case pkg == "runtime" || strings.HasPrefix(pkg, "runtime/") || strings.HasPrefix(pkg, "internal/") || pkg == "sync" ||
		strings.HasPrefix(pkg, "sync/") || pkg == "reflect" || pkg == "syscall" || pkg == "unique" || pkg == "weak" || pkg == "iter":
		return "runtime, reflect, sync, syscall, internal/…"
	case strings.HasPrefix(pkg, "vendor/golang.org/x/"):
		return "vendor/golang.org/x/… (the standard library's copies)"
	case strings.HasPrefix(pkg, "net/http") || pkg == "mime" || strings.HasPrefix(pkg, "mime/") || pkg == "net/textproto":
		return pkg
	case strings.HasPrefix(pkg, "golang.org/x/"), strings.HasPrefix(pkg, "github.com/"):
		if parts := strings.Split(pkg, "/"); len(parts) >= 3 {
			return strings.Join(parts[:3], "/")
		}
	}
	return pkg
}

// sizeMarkdown writes the table, rows of at least minBytes, the rest folded into one row.
func sizeMarkdown(w io.Writer, t *SizeTable, minBytes int64, grouped bool) {
	rows := t.Packages
	if grouped {
		g := map[string]*PkgSize{}
		for _, p := range t.Packages {
			name := groupOf(p.Package)
			q := g[name]
			if q == nil {
				q = &PkgSize{Package: name}
				g[name] = q
			}
			q.Text += p.Text
			q.Rodata += p.Rodata
			q.Data += p.Data
			q.Meta += p.Meta
			q.Total += p.Total
		}
		rows = nil
		for _, q := range g {
			rows = append(rows, q)
		}
		slices.SortFunc(rows, func(a, b *PkgSize) int {
			return cmp.Or(cmp.Compare(b.Total, a.Total), strings.Compare(a.Package, b.Package))
		})
	}
	kib := func(v int64) string { return fmt.Sprintf("%.0f", float64(v)/1024) }
	var sum int64
	for _, p := range rows {
		sum += p.Total
	}
	sum += t.Unattributed
	tb := &table{head: []string{"package", "total KiB", "share", "code KiB", "metadata KiB", "rodata KiB", "data KiB"}}
	var rest PkgSize
	restN := 0
	for _, p := range rows {
		if p.Total < minBytes {
			rest.Text, rest.Rodata, rest.Data, rest.Meta, rest.Total = rest.Text+p.Text, rest.Rodata+p.Rodata, rest.Data+p.Data, rest.Meta+p.Meta, rest.Total+p.Total
			restN++
			continue
		}
		tb.add("`"+p.Package+"`", kib(p.Total), fmt.Sprintf("%.1f%%", float64(p.Total)*100/float64(sum)), kib(p.Text), kib(p.Meta), kib(p.Rodata), kib(p.Data))
	}
	if restN > 0 {
		tb.add(fmt.Sprintf("%d smaller packages", restN), kib(rest.Total), fmt.Sprintf("%.1f%%", float64(rest.Total)*100/float64(sum)),
			kib(rest.Text), kib(rest.Meta), kib(rest.Rodata), kib(rest.Data))
	}
	tb.add("string literals, unnamed type descriptors", kib(t.Unattributed), fmt.Sprintf("%.1f%%", float64(t.Unattributed)*100/float64(sum)), dash, dash, kib(t.Unattributed), dash)
	tb.add("**all**", kib(sum), "100%", dash, dash, dash, dash)
	io.WriteString(w, tb.String())
}

// runSize is `airbench size [-min KiB] [-all] BINARY`: the table on stdout.
func runSize(args []string) {
	fs := flag.NewFlagSet("size", flag.ExitOnError)
	minKiB := fs.Int("min", 16, "fold packages smaller than this many KiB into one row")
	all := fs.Bool("packages", false, "one row per package (default: airelay's packages one by one, the standard library's crypto and runtime and each module grouped)")
	fs.Parse(args)
	if fs.NArg() != 1 {
		log.Fatal("usage: airbench size [-min KiB] [-packages] BINARY (unstripped)")
	}
	t, err := packageSizes(fs.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes unstripped, %d bytes in the sections a stripped build keeps\n\n", t.Binary, t.FileBytes, t.LoadedBytes)
	sizeMarkdown(os.Stdout, t, int64(*minKiB)<<10, !*all)
}
