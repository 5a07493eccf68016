//go:build !linux

package relay

import "time"

type poller struct{}

type sock struct{}

func (*sock) kick() {}

func pollStart(*relayed, time.Duration, time.Duration) bool { return false }

func getPoller() *poller { return nil }

func (*poller) closeAll(*Relay) {}
