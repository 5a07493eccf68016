// Package usign makes and checks the Ed25519 signatures opkg verifies with OpenWrt's usign
// (a signify work-alike): Packages.sig beside a feed's Packages, checked against the public keys
// in /etc/opkg/keys/, each in a file named after its fingerprint.
//
//	key file:   "untrusted comment: …\n" base64(struct) "\n"
//	secret:     "Ed" "BK" u32 kdfrounds (0) | 16 salt | 8 checksum (SHA-512 of the key) |
//	            8 fingerprint | 64 Ed25519 private key
//	public:     "Ed" | 8 fingerprint | 32 Ed25519 public key
//	signature:  "Ed" | 8 fingerprint | 64 Ed25519 signature of the whole message
//
// Keys are unencrypted (kdfrounds 0), as `usign -G` writes them. Ed25519 signatures are
// deterministic, so signing is reproducible. This package does not read files.
package usign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	secretLen = 2 + 2 + 4 + 16 + 8 + 8 + 64
	publicLen = 2 + 8 + 32
	sigLen    = 2 + 8 + 64
)

// Secret is a usign secret key.
type Secret struct {
	fp   [8]byte
	priv ed25519.PrivateKey
}

// Generate makes a new key pair and returns the secret and public key files.
func Generate(comment string) (secret, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	var fp [8]byte
	if _, err := rand.Read(fp[:]); err != nil {
		return nil, nil, err
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, nil, err
	}
	sum := sha512.Sum512(priv)
	s := append([]byte("EdBK"), 0, 0, 0, 0)
	s = append(s, salt[:]...)
	s = append(s, sum[:8]...)
	s = append(s, fp[:]...)
	s = append(s, priv...)
	p := append(append([]byte("Ed"), fp[:]...), pub...)
	return encode(comment, s), encode("public key "+hex.EncodeToString(fp[:]), p), nil
}

func encode(comment string, b []byte) []byte {
	return []byte("untrusted comment: " + comment + "\n" + base64.StdEncoding.EncodeToString(b) + "\n")
}

// decode reads a usign file: the comment line, then the base64 line.
func decode(file []byte, want int, what string) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(file), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "untrusted comment: ") {
		return nil, fmt.Errorf("usign %s: want an \"untrusted comment:\" line and a base64 line", what)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(lines[1]))
	if err != nil {
		return nil, fmt.Errorf("usign %s: %v", what, err)
	}
	if len(b) != want || string(b[:2]) != "Ed" {
		return nil, fmt.Errorf("usign %s: %d bytes, want %d starting with Ed", what, len(b), want)
	}
	return b, nil
}

// ParseSecret reads a secret key file.
func ParseSecret(file []byte) (*Secret, error) {
	b, err := decode(file, secretLen, "secret key")
	if err != nil {
		return nil, err
	}
	if string(b[2:4]) != "BK" || !bytes.Equal(b[4:8], []byte{0, 0, 0, 0}) {
		return nil, errors.New("usign secret key: encrypted keys (kdfrounds > 0) are not supported")
	}
	s := &Secret{priv: ed25519.PrivateKey(bytes.Clone(b[40:]))}
	copy(s.fp[:], b[32:40])
	if sum := sha512.Sum512(s.priv); !bytes.Equal(sum[:8], b[24:32]) {
		return nil, errors.New("usign secret key: checksum does not match the key")
	}
	return s, nil
}

// Fingerprint is the key's id in hex: the name of its public key file in /etc/opkg/keys/.
func (s *Secret) Fingerprint() string { return hex.EncodeToString(s.fp[:]) }

// Public is the public key file of s.
func (s *Secret) Public() []byte {
	p := append(append([]byte("Ed"), s.fp[:]...), s.priv.Public().(ed25519.PublicKey)...)
	return encode("public key "+s.Fingerprint(), p)
}

// Sign returns the signature file of msg, as `usign -S -m msg` writes it.
func (s *Secret) Sign(msg []byte) []byte {
	sig := append(append([]byte("Ed"), s.fp[:]...), ed25519.Sign(s.priv, msg)...)
	return encode("signed by key "+s.Fingerprint(), sig)
}

// Verify checks a signature file against a public key file and the message.
func Verify(public, msg, sig []byte) error {
	p, err := decode(public, publicLen, "public key")
	if err != nil {
		return err
	}
	g, err := decode(sig, sigLen, "signature")
	if err != nil {
		return err
	}
	if !bytes.Equal(p[2:10], g[2:10]) {
		return fmt.Errorf("usign: signed by key %x, not by %x", g[2:10], p[2:10])
	}
	if !ed25519.Verify(ed25519.PublicKey(p[10:]), msg, g[10:]) {
		return errors.New("usign: signature does not verify")
	}
	return nil
}
