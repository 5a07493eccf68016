package testnet

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// Skip, returned by a function InFreshNetns runs, skips the test with its text: the
// namespaced goroutine may not call t.Skip itself.
type Skip string

func (s Skip) Error() string { return string(s) }

// InFreshNetns runs fn on a thread of its own in a new, empty network namespace (loopback
// down), and fails or skips tb by what fn returns. The thread is never unlocked, so when fn
// returns the runtime ends it and the kernel frees the namespace with everything fn created
// in it, even when fn fails or panics halfway. Processes started from that thread, and files
// under /proc/sys/net it opens, are the namespace's.
func InFreshNetns(tb testing.TB, fn func() error) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: it creates a network namespace")
	}
	errc := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("panic: %v", p)
			}
		}()
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			errc <- Skip("cannot create a network namespace: " + err.Error())
			return
		}
		errc <- fn()
	}()
	err := <-errc
	var skip Skip
	if errors.As(err, &skip) {
		tb.Skip(string(skip))
	}
	if err != nil {
		tb.Fatal(err)
	}
}
