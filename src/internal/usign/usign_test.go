package usign

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	sec, pub, err := Generate("test key")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSecret(sec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Public(), pub) {
		t.Errorf("Public() differs from the generated public key file")
	}
	if !strings.HasPrefix(string(pub), "untrusted comment: public key "+s.Fingerprint()+"\n") {
		t.Errorf("public key comment: %q", pub)
	}
	msg := []byte("Package: airelay\nVersion: 0.1.0-r1\n\n")
	sig := s.Sign(msg)
	if !bytes.Equal(sig, s.Sign(msg)) {
		t.Error("signing twice gives different bytes")
	}
	if !strings.HasPrefix(string(sig), "untrusted comment: signed by key "+s.Fingerprint()+"\n") {
		t.Errorf("signature comment: %q", sig)
	}
	if err := Verify(pub, msg, sig); err != nil {
		t.Error(err)
	}
	if err := Verify(pub, append(msg, 'x'), sig); err == nil {
		t.Error("a changed message verifies")
	}
	_, other, _ := Generate("other")
	if err := Verify(other, msg, sig); err == nil || !strings.Contains(err.Error(), "signed by key") {
		t.Errorf("another key: %v", err)
	}
	if _, err := ParseSecret(pub); err == nil {
		t.Error("a public key parses as a secret key")
	}
}

// signify (OpenBSD's, whose file format usign shares) accepts the keys and signatures, when it
// is installed.
func TestSignify(t *testing.T) {
	prog, err := exec.LookPath("signify-openbsd")
	if err != nil {
		if prog, err = exec.LookPath("signify"); err != nil {
			t.Skip("signify is not installed")
		}
	}
	sec, pub, err := Generate("test key")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ParseSecret(sec)
	dir := t.TempDir()
	msg := []byte("Package: airelay\n\n")
	for name, b := range map[string][]byte{"key.pub": pub, "Packages": msg, "Packages.sig": s.Sign(msg), "key.sec": sec} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(prog, "-V", "-p", filepath.Join(dir, "key.pub"), "-m", filepath.Join(dir, "Packages"), "-x", filepath.Join(dir, "Packages.sig")).CombinedOutput(); err != nil {
		t.Errorf("signify -V: %v\n%s", err, out)
	}
	// and the other way: signify signs with our secret key, we verify
	if out, err := exec.Command(prog, "-S", "-s", filepath.Join(dir, "key.sec"), "-m", filepath.Join(dir, "Packages"), "-x", filepath.Join(dir, "s.sig")).CombinedOutput(); err != nil {
		t.Fatalf("signify -S: %v\n%s", err, out)
	}
	sig, _ := os.ReadFile(filepath.Join(dir, "s.sig"))
	if err := Verify(pub, msg, sig); err != nil {
		t.Errorf("signify's signature: %v", err)
	}
}
