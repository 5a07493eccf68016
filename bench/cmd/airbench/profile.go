package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Profiles, for `make bench-profile`: the airelay under test is then built with a pprof
// listener (bench/profile/pprof.go.txt, added through go build -overlay, never in the tree) at
// $AIRELAY_PPROF, and airbench saves CPU profiles of its throughput runs and heap and goroutine
// profiles of its memory runs to $AIRBENCH_PROFILE_DIR.

func profiling() (addr, dir string, ok bool) {
	addr, dir = os.Getenv("AIRELAY_PPROF"), os.Getenv("AIRBENCH_PROFILE_DIR")
	return addr, dir, addr != "" && dir != ""
}

// saveProfile fetches /debug/pprof/<path> into dir/name.
func saveProfile(path, name string) {
	addr, dir, ok := profiling()
	if !ok {
		return
	}
	os.MkdirAll(dir, 0o755)
	c := &http.Client{Timeout: 60 * time.Second}
	res, err := c.Get("http://" + addr + "/debug/pprof/" + path)
	if err != nil {
		log.Printf("profile %s: %v", name, err)
		return
	}
	defer res.Body.Close()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		log.Print(err)
		return
	}
	defer f.Close()
	io.Copy(f, res.Body)
	log.Printf("profile saved: %s", filepath.Join(dir, name))
}

// cpuProfileAsync starts a CPU profile of secs seconds; wait for it with the returned func.
func cpuProfileAsync(name string, secs int) func() {
	if _, _, ok := profiling(); !ok || secs < 1 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		saveProfile(fmt.Sprintf("profile?seconds=%d", secs), name)
	}()
	return func() { <-done }
}
