package main

import (
	"crypto/x509"

	"github.com/airelay/airelay/src/testca"
)

// writeCerts makes a throwaway CA and a leaf for api.openai.com and 127.0.0.1 (ECDSA P-256, as
// the real providers' certificates mostly are), and writes ca.pem, cert.pem and key.pem to dir.
func writeCerts(dir string) (*x509.CertPool, error) {
	ca, err := testca.New("airbench CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Leaf("api.openai.com", "localhost", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	if _, _, _, err := ca.WriteFiles(dir, leaf); err != nil {
		return nil, err
	}
	return ca.Pool(), nil
}
