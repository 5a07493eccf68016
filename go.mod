module github.com/airelay/airelay

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/digineo/go-uci v0.0.0-20210918132103-37c7b10c14fa
	github.com/miekg/dns v1.1.73
	golang.org/x/sys v0.47.0
)

require golang.org/x/net v0.57.0
