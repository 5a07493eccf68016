// Command mkfeed writes an OpenWrt package feed that a web server can serve as it is, one
// directory per architecture holding both package formats and their indexes:
//
//	<out>/<arch>/name-version.apk …   packages.adb          apk-tools v3 (OpenWrt 25.12)
//	<out>/<arch>/name_version_arch.ipk …   Packages  Packages.gz  [Packages.sig]   opkg (24.10)
//	<out>/keys/                       the public keys routers install, when signing
//
// The architecture-independent packages (apk "noarch", ipk "all") go into every architecture's
// directory. With --sign-key the index is signed for apk (ECDSA P-256 or RSA, PEM); with
// --usign-key Packages is signed for opkg (usign, Ed25519). `mkfeed keys` makes both keys.
// mk/apk.mk drives it.
//
//	mkfeed --out dist/feed --apk dist/apk --ipk dist --arch mipsel_24kc,x86_64 [--sign-key k.pem] [--usign-key u.key]
//	mkfeed keys --dir keys
//	mkfeed inspect FILE…            what a .apk or packages.adb holds, as JSON (package apk's Inspect)
//	mkfeed dump FILE                the text `apk adbdump FILE` prints, without apk-tools
//	mkfeed extract --root DIR [--scripts DIR] FILE   unpack a .apk as apk add would (no scripts run)
//	mkfeed verify --key PUB FILE…   check the signatures against a public key: a PEM key (as in
//	                                /etc/apk/keys/) for .apk and packages.adb, a usign key (as in
//	                                /etc/opkg/keys/) for Packages, whose signature is Packages.sig
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airelay/airelay/src/internal/apk"
	"github.com/airelay/airelay/src/internal/ipk"
	"github.com/airelay/airelay/src/internal/usign"
)

func main() {
	var err error
	sub := ""
	if len(os.Args) > 1 {
		sub = os.Args[1]
	}
	switch sub {
	case "keys":
		err = keys(os.Args[2:])
	case "inspect", "dump", "verify":
		err = read(sub, os.Args[2:])
	case "extract":
		err = extract(os.Args[2:])
	default:
		err = feed(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkfeed:", err)
		os.Exit(1)
	}
}

// Key file names under --dir (keys) and <out>/keys (feed).
const (
	apkPrivate   = "airelay-apk.key"   // PEM EC private key: SIGNING_KEY
	apkPublic    = "airelay-apk.pem"   // PEM public key: /etc/apk/keys/airelay-apk.pem
	usignPrivate = "airelay-usign.key" // usign secret key: USIGN_KEY
	usignPublic  = "airelay-usign.pub" // usign public key: /etc/opkg/keys/<fingerprint>
	descPrefix   = "airelay feed for " // the index's description
	noarchAPK    = "noarch"            // apk's architecture-independent directory
	noarchIPK    = "all"               // ipk's
)

func keys(args []string) error {
	fl := flag.NewFlagSet("mkfeed keys", flag.ContinueOnError)
	dir := fl.String("dir", "keys", "directory to write the key pairs to (made 0700)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{apkPrivate, usignPrivate} {
		if _, err := os.Stat(filepath.Join(*dir, f)); err == nil {
			return fmt.Errorf("%s exists: not overwriting a signing key", filepath.Join(*dir, f))
		}
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		return err
	}
	key, err := apk.NewKey(ec)
	if err != nil {
		return err
	}
	pub, err := key.PublicPEM()
	if err != nil {
		return err
	}
	sec, upub, err := usign.Generate("airelay feed signing key")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{apkPrivate, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600},
		{apkPublic, pub, 0o644},
		{usignPrivate, sec, 0o600},
		{usignPublic, upub, 0o644},
	} {
		if err := os.WriteFile(filepath.Join(*dir, f.name), f.data, f.mode); err != nil {
			return err
		}
		fmt.Println(filepath.Join(*dir, f.name))
	}
	return nil
}

func feed(args []string) error {
	fl := flag.NewFlagSet("mkfeed", flag.ContinueOnError)
	out := fl.String("out", "dist/feed", "feed directory to write (replaced)")
	apkDir := fl.String("apk", "dist/apk", "directory with <arch>/*.apk and noarch/*.apk")
	ipkDir := fl.String("ipk", "dist", "directory with *_<arch>.ipk and *_all.ipk")
	arches := fl.String("arch", "", "comma-separated architectures")
	signKey := fl.String("sign-key", "", "PEM private key that signs packages.adb (ECDSA P-256 or RSA)")
	usignKey := fl.String("usign-key", "", "usign secret key that signs Packages")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}
	var key *apk.Key
	var usec *usign.Secret
	if *signKey != "" {
		b, err := os.ReadFile(*signKey)
		if err != nil {
			return err
		}
		if key, err = apk.ParseKey(b); err != nil {
			return fmt.Errorf("--sign-key %s: %v", *signKey, err)
		}
	}
	if *usignKey != "" {
		b, err := os.ReadFile(*usignKey)
		if err != nil {
			return err
		}
		if usec, err = usign.ParseSecret(b); err != nil {
			return fmt.Errorf("--usign-key %s: %v", *usignKey, err)
		}
	}
	if strings.TrimSpace(*arches) == "" {
		return errors.New("--arch: no architectures given")
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	for _, arch := range strings.Split(*arches, ",") {
		arch = strings.TrimSpace(arch)
		dir := filepath.Join(*out, arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		_, apks, err := copyAll(dir, filepath.Join(*apkDir, arch, "*.apk"), filepath.Join(*apkDir, noarchAPK, "*.apk"))
		if err != nil {
			return err
		}
		if len(apks) == 0 {
			return fmt.Errorf("%s: no .apk files for %s (run make apk)", filepath.Join(*apkDir, arch), arch)
		}
		var idx bytes.Buffer
		if err := apk.WriteIndex(&idx, descPrefix+arch, apks, key); err != nil {
			return err
		}
		if err := write(filepath.Join(dir, "packages.adb"), idx.Bytes()); err != nil {
			return err
		}
		if err := opkgIndex(dir, *ipkDir, arch, usec); err != nil {
			return err
		}
	}
	if key != nil || usec != nil {
		kd := filepath.Join(*out, "keys")
		if err := os.MkdirAll(kd, 0o755); err != nil {
			return err
		}
		if key != nil {
			pub, err := key.PublicPEM()
			if err != nil {
				return err
			}
			if err := write(filepath.Join(kd, apkPublic), pub); err != nil {
				return err
			}
		}
		if usec != nil {
			if err := write(filepath.Join(kd, usec.Fingerprint()), usec.Public()); err != nil {
				return err
			}
		}
	}
	return nil
}

// opkgIndex copies the architecture's and the "all" .ipk files into dir and writes Packages,
// Packages.gz and, with a key, Packages.sig.
func opkgIndex(dir, ipkDir, arch string, usec *usign.Secret) error {
	names, files, err := copyAll(dir, filepath.Join(ipkDir, "*_"+arch+".ipk"), filepath.Join(ipkDir, "*_"+noarchIPK+".ipk"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s: no .ipk files for %s (run make ipk)", ipkDir, arch)
	}
	var pk bytes.Buffer
	for i, f := range files {
		st, err := ipk.IndexStanza(names[i], f)
		if err != nil {
			return err
		}
		pk.Write(st)
	}
	if err := write(filepath.Join(dir, "Packages"), pk.Bytes()); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(pk.Bytes())
	if err := zw.Close(); err != nil {
		return err
	}
	if err := write(filepath.Join(dir, "Packages.gz"), gz.Bytes()); err != nil {
		return err
	}
	if usec != nil {
		return write(filepath.Join(dir, "Packages.sig"), usec.Sign(pk.Bytes()))
	}
	return nil
}

// copyAll copies the files the patterns match into dir and returns their contents, ordered by
// file name, and their names.
func copyAll(dir string, patterns ...string) ([]string, [][]byte, error) {
	var paths []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, nil, err
		}
		paths = append(paths, m...)
	}
	sort.Slice(paths, func(i, j int) bool { return filepath.Base(paths[i]) < filepath.Base(paths[j]) })
	var names []string
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		if err := write(filepath.Join(dir, filepath.Base(p)), b); err != nil {
			return nil, nil, err
		}
		names = append(names, filepath.Base(p))
		out = append(out, b)
	}
	return names, out, nil
}

// read runs the subcommands that read ADB files.
func read(sub string, args []string) error {
	fl := flag.NewFlagSet("mkfeed "+sub, flag.ContinueOnError)
	keyFile := fl.String("key", "", "verify: PEM public key")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return fmt.Errorf("%s: no files given", sub)
	}
	var pub []byte
	if sub == "verify" {
		if *keyFile == "" {
			return errors.New("verify: --key PUB is required")
		}
		var err error
		if pub, err = os.ReadFile(*keyFile); err != nil {
			return err
		}
	}
	var all []*apk.Contents
	for _, name := range fl.Args() {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if sub == "verify" && bytes.HasPrefix(pub, []byte("untrusted comment:")) {
			sig, err := os.ReadFile(name + ".sig")
			if err != nil {
				return err
			}
			if err := usign.Verify(pub, b, sig); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			fmt.Printf("%s: OK\n", name)
			continue
		}
		c, err := apk.Read(b)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		switch sub {
		case "dump":
			d, err := apk.Dump(c, "UNTRUSTED signature")
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			fmt.Print(d)
		case "verify":
			if err := apk.Verify(c, pub); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			fmt.Printf("%s: OK\n", name)
		case "inspect":
			ct, err := apk.Inspect(c)
			if err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			all = append(all, ct)
		}
	}
	if sub == "inspect" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	return nil
}

// extract unpacks a package into a directory: its directories, files and symlinks with their
// modes (owners are root in every airelay package, and left as they come), and its scripts as
// <scripts>/<name>.<script>, mode 0755.
func extract(args []string) error {
	fl := flag.NewFlagSet("mkfeed extract", flag.ContinueOnError)
	root := fl.String("root", "", "directory to unpack into")
	scripts := fl.String("scripts", "", "directory for the maintainer scripts (default: not written)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *root == "" || fl.NArg() != 1 {
		return errors.New("extract: want --root DIR and one .apk")
	}
	b, err := os.ReadFile(fl.Arg(0))
	if err != nil {
		return err
	}
	c, err := apk.Read(b)
	if err != nil {
		return fmt.Errorf("%s: %v", fl.Arg(0), err)
	}
	p, err := apk.Unpack(c)
	if err != nil {
		return fmt.Errorf("%s: %v", fl.Arg(0), err)
	}
	for _, f := range p.Files {
		dst := filepath.Join(*root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch {
		case f.Dir:
			err = os.MkdirAll(dst, f.Mode)
		case f.Link != "":
			os.Remove(dst)
			err = os.Symlink(f.Link, dst)
		default:
			err = os.WriteFile(dst, f.Data, f.Mode)
		}
		if err == nil && f.Link == "" {
			err = os.Chmod(dst, f.Mode)
		}
		if err != nil {
			return err
		}
	}
	if *scripts != "" {
		if err := os.MkdirAll(*scripts, 0o755); err != nil {
			return err
		}
		for name, s := range p.Scripts {
			if err := os.WriteFile(filepath.Join(*scripts, p.Info.Name+"."+name), s, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

func write(name string, b []byte) error { return os.WriteFile(name, b, 0o644) }
