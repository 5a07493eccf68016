package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSymbolPackage(t *testing.T) {
	for sym, want := range map[string]string{
		"net/http.(*Transport).dialConn":                             "net/http",
		"github.com/miekg/dns.init":                                  "github.com/miekg/dns",
		"github.com/airelay/airelay/src/internal/h1.(*Chunked).Next": "github.com/airelay/airelay/src/internal/h1",
		"type:*net/http.Header":                                      "net/http",
		"type:[]uint8":                                               "",
		"type:map[string]*net/http.Cookie":                           "",
		"go:itab.*github.com/miekg/dns.A,github.com/miekg/dns.RR":    "github.com/miekg/dns",
		"go:itab.*os.File,io.Reader":                                 "os",
		"slices.SortFunc[go.shape.struct { net/netip.Addr; x int }]": "slices",
		"sync/atomic.(*Pointer[github.com/x/y.T]).Load":              "sync/atomic",
		"vendor/golang.org/x/net/idna.idnaValues":                    "vendor/golang.org/x/net/idna",
		"go:string.*": "",
		"go:(*struct { io.Reader; io.WriterTo }).WriteTo":                  "",
		"struct { io.Reader; io.WriterTo }.Read":                           "",
		"runtime.mallocgc":                                                 "runtime",
		"_rt0_mipsle_linux":                                                "",
		"main.main":                                                        "main",
		"crypto/internal/fips140/nistec/fiat.p521Square":                   "crypto/internal/fips140/nistec/fiat",
		"github.com/coreos/go-systemd/v22/activation.Files":                "github.com/coreos/go-systemd/v22/activation",
		"encoding/json.(*decodeState).literalStore":                        "encoding/json",
		"github.com/airelay/airelay/src/internal/stats.(*Server).Serve":    "github.com/airelay/airelay/src/internal/stats",
		"github.com/airelay/airelay/src/internal/stats.Pages.func1":        "github.com/airelay/airelay/src/internal/stats",
		"type:github.com/airelay/airelay/src/internal/stats.Status":        "github.com/airelay/airelay/src/internal/stats",
		"go:itab.github.com/airelay/airelay/src/internal/x.T,fmt.Stringer": "github.com/airelay/airelay/src/internal/x",
	} {
		if got := symbolPackage(sym); got != want {
			t.Errorf("symbolPackage(%q) = %q, want %q", sym, got, want)
		}
	}
}

// airbench built with its symbol table: the runtime is in it, the shares add up; built without
// (-s -w) it is refused with the reason.
func TestPackageSizes(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, ldflags string }{{"syms", ""}, {"stripped", "-s -w"}} {
		out, err := exec.Command("go", "build", "-ldflags", c.ldflags, "-o", filepath.Join(dir, c.name), ".").CombinedOutput()
		if err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	if _, err := packageSizes(filepath.Join(dir, "stripped")); err == nil || !strings.Contains(err.Error(), "no symbol table") {
		t.Errorf("a stripped binary: %v", err)
	}
	tb, err := packageSizes(filepath.Join(dir, "syms"))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	byName := map[string]*PkgSize{}
	for _, p := range tb.Packages {
		sum += p.Total
		byName[p.Package] = p
	}
	if rt := byName["runtime"]; rt == nil || rt.Text < 100<<10 || rt.Meta == 0 {
		t.Fatalf("runtime: %+v", rt)
	}
	if byName["main"] == nil || byName["debug/elf"] == nil {
		t.Errorf("main or debug/elf missing: %d packages", len(tb.Packages))
	}
	// What is shared out plus what is not attributed is (nearly) all the stripped file holds.
	if all := sum + tb.Unattributed; all > tb.LoadedBytes || all < tb.LoadedBytes*9/10 {
		t.Errorf("attributed %d + %d of %d bytes", sum, tb.Unattributed, tb.LoadedBytes)
	}
	var b strings.Builder
	sizeMarkdown(&b, tb, 16<<10, true)
	if !strings.Contains(b.String(), "| `runtime, reflect, sync, syscall, internal/…` |") || !strings.Contains(b.String(), "| **all** |") {
		t.Errorf("table:\n%s", b.String())
	}
}
