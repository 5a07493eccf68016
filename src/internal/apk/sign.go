package apk

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Key signs ADB files the way apk-tools v3 does: an ECDSA P-256 key (what OpenWrt 25.12's build
// makes and its routers trust in /etc/apk/keys/) or an RSA key.
type Key struct {
	priv crypto.Signer
	id   [16]byte
}

// ParseKey reads a PEM private key: "EC PRIVATE KEY" (SEC 1), "PRIVATE KEY" (PKCS #8) or
// "RSA PRIVATE KEY" (PKCS #1), as `openssl ecparam -genkey` or `openssl genrsa` write them.
func ParseKey(pemBytes []byte) (*Key, error) {
	blk, rest := pem.Decode(pemBytes)
	for blk != nil && blk.Type == "EC PARAMETERS" { // openssl ecparam -genkey without -noout
		blk, rest = pem.Decode(rest)
	}
	if blk == nil {
		return nil, errors.New("no PEM private key block")
	}
	var k any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	return NewKey(k)
}

// NewKey wraps an *ecdsa.PrivateKey on P-256 or an *rsa.PrivateKey.
func NewKey(k any) (*Key, error) {
	var pub []byte
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s: apk on OpenWrt takes P-256 (prime256v1)", k.Curve.Params().Name)
		}
		e, err := k.PublicKey.ECDH()
		if err != nil {
			return nil, err
		}
		pub = e.Bytes() // the uncompressed point, as OpenSSL's i2d_PublicKey writes it
	case *rsa.PrivateKey:
		pub = x509.MarshalPKCS1PublicKey(&k.PublicKey)
	default:
		return nil, fmt.Errorf("%T: want an ECDSA P-256 or RSA private key", k)
	}
	key := &Key{priv: k.(crypto.Signer)}
	sum := sha512.Sum512(pub)
	copy(key.id[:], sum[:16])
	return key, nil
}

// ID is the key's identity in signature blocks: the first 16 bytes of SHA-512 over the public
// key (the EC point, or the PKCS #1 RSA key).
func (k *Key) ID() [16]byte { return k.id }

// PublicPEM is the public key as apk reads it from /etc/apk/keys/ (PKIX "PUBLIC KEY").
func (k *Key) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// hashSHA512 is the digest algorithm number apk-tools gives SHA-512.
const hashSHA512 = 4

// signatureBlock is the payload of a signature block over adb (an ADB block's payload) in a
// container of schema: sign_ver 0, hash_alg SHA-512, the key id, then the signature of
// SHA-512(schema LE | those 18 bytes | SHA-512(adb)).
func (k *Key) signatureBlock(schema uint32, adb []byte) ([]byte, error) {
	hdr := append([]byte{0, hashSHA512}, k.id[:]...)
	md := sha512.Sum512(adb)
	h := sha512.New()
	h.Write(binary.LittleEndian.AppendUint32(nil, schema))
	h.Write(hdr)
	h.Write(md[:])
	digest := h.Sum(nil)
	var sig []byte
	var err error
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		sig, err = signECDSA(p, digest)
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(nil, p, crypto.SHA512, digest)
	}
	if err != nil {
		return nil, err
	}
	return append(hdr, sig...), nil
}

// verify checks a signature block made by this key's public half.
func verifySignature(pub crypto.PublicKey, schema uint32, adb, block []byte) error {
	if len(block) < 18 || block[0] != 0 || block[1] != hashSHA512 {
		return errors.New("apk: signature block: not v0 with SHA-512")
	}
	md := sha512.Sum512(adb)
	h := sha512.New()
	h.Write(binary.LittleEndian.AppendUint32(nil, schema))
	h.Write(block[:18])
	h.Write(md[:])
	digest := h.Sum(nil)
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, block[18:]) {
			return errors.New("apk: ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, crypto.SHA512, digest, block[18:])
	}
	return fmt.Errorf("apk: %T is not an ECDSA or RSA public key", pub)
}

// signECDSA signs digest with a nonce derived from the key and the digest (HMAC-SHA-512 keyed
// with the private scalar, reduced into [1, n-1]), so the same file signed twice is the same
// bytes; crypto/ecdsa draws its nonces from the system's random source. The nonce is as secret
// as the key and differs for every message, which is what ECDSA needs. The point k·G comes from
// crypto/ecdh; the rest is the textbook formula s = k⁻¹(e + r·d) mod n, DER-encoded.
func signECDSA(p *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	n := p.Curve.Params().N
	d := p.D.FillBytes(make([]byte, (n.BitLen()+7)/8)) // what Go 1.25's p.Bytes() returns
	e := hashToInt(digest, n)
	for ctr := byte(0); ctr < 16; ctr++ {
		mac := hmac.New(sha512.New, d)
		mac.Write(digest)
		mac.Write([]byte{ctr})
		k := new(big.Int).SetBytes(mac.Sum(nil))
		k.Mod(k, new(big.Int).Sub(n, big.NewInt(1)))
		k.Add(k, big.NewInt(1))
		kb := k.FillBytes(make([]byte, 32))
		kp, err := ecdh.P256().NewPrivateKey(kb)
		if err != nil {
			return nil, err
		}
		pt := kp.PublicKey().Bytes() // 0x04 | X | Y
		r := new(big.Int).SetBytes(pt[1:33])
		r.Mod(r, n)
		if r.Sign() == 0 {
			continue
		}
		s := new(big.Int).Mul(r, new(big.Int).SetBytes(d))
		s.Add(s, e)
		s.Mul(s, new(big.Int).ModInverse(k, n))
		s.Mod(s, n)
		if s.Sign() == 0 {
			continue
		}
		return asn1.Marshal(struct{ R, S *big.Int }{r, s})
	}
	return nil, errors.New("apk: no ECDSA nonce found")
}

// hashToInt takes the leftmost bits of the digest, as many as the group order has (FIPS 186-4).
func hashToInt(digest []byte, n *big.Int) *big.Int {
	bits := n.BitLen()
	if len(digest) > (bits+7)/8 {
		digest = digest[:(bits+7)/8]
	}
	e := new(big.Int).SetBytes(digest)
	if excess := len(digest)*8 - bits; excess > 0 {
		e.Rsh(e, uint(excess))
	}
	return e
}

// ParsePublicKey reads a PEM "PUBLIC KEY" as /etc/apk/keys/ holds them, for the tests and
// for checking a file against a key.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, [16]byte, error) {
	var id [16]byte
	blk, _ := pem.Decode(pemBytes)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, id, errors.New("no PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, id, err
	}
	var raw []byte
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		e, err := p.ECDH()
		if err != nil {
			return nil, id, err
		}
		raw = e.Bytes()
	case *rsa.PublicKey:
		raw = x509.MarshalPKCS1PublicKey(p)
	default:
		return nil, id, fmt.Errorf("%T is not an ECDSA or RSA public key", pub)
	}
	sum := sha512.Sum512(raw)
	copy(id[:], sum[:16])
	return pub, id, nil
}
