module github.com/airelay/airelay

go 1.23.2

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/digineo/go-uci v0.0.0-20210918132103-37c7b10c14fa
	github.com/miekg/dns v1.1.68
	golang.org/x/sys v0.35.0
)

require golang.org/x/net v0.43.0

require (
	golang.org/x/mod v0.24.0 // indirect
	golang.org/x/sync v0.14.0 // indirect
	golang.org/x/tools v0.33.0 // indirect
)
