package config

import (
	"os"
	"strconv"

	uci "github.com/digineo/go-uci"
	"golang.org/x/sys/unix"
)

// memTree is uciTree's first choice; nil when memfd or /proc is missing.
func memTree(text []byte) (uci.Tree, string, func()) {
	fd, err := unix.MemfdCreate("airelay-config", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, "", nil
	}
	f := os.NewFile(uintptr(fd), "airelay-config")
	name := strconv.Itoa(fd)
	if _, err := f.Write(text); err != nil {
		f.Close()
		return nil, "", nil
	}
	if _, err := os.Stat("/proc/self/fd/" + name); err != nil {
		f.Close()
		return nil, "", nil
	}
	return uci.NewTree("/proc/self/fd"), name, func() { f.Close() }
}
