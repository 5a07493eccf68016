//go:build go1.26

// The runtime and library defaults of Go 1.26 when built with Go 1.26 or later, as before go.mod's
// go line went down to 1.23 (OpenWrt 24.10's Go): post-quantum key exchange offered to
// providers (tlsmlkem, tlssecpmlkem), no SHA-1 signatures in TLS 1.2 (tlssha1), stricter X.509
// and URL parsing. Without this line a newer toolchain would give the binary Go 1.23's GODEBUG
// defaults. An older toolchain skips this file and uses its own defaults.

//go:debug default=go1.26
package main
