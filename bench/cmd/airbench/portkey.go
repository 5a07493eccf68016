package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Portkey's AI gateway (npm @portkey-ai/gateway, a Node.js server), the AI-gateway column.
// bench/deps.sh installs it into -portkey with the dependency versions of its own lockfile.
// It keeps no keys: as its docs say, a client names the provider in x-portkey-provider and
// sends the provider's key itself in Authorization; x-portkey-custom-host points the provider
// at the fake. It passes no query string on, so the fake's hold and tick options go in that
// URL's path (/_hold/TICK/v1, see upstream.go).

// portkeyServer is the installed gateway's entry point.
func portkeyServer(dir string) string {
	return filepath.Join(dir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
}

// portkeyVersion is the installed gateway's version; "" when it is not installed.
func portkeyVersion(dir string) string {
	if _, err := os.Stat(portkeyServer(dir)); err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "@portkey-ai", "gateway", "package.json"))
	if err != nil {
		return ""
	}
	var pj struct{ Version string }
	if json.Unmarshal(b, &pj) != nil {
		return ""
	}
	if _, ok := lookPath("node"); !ok {
		return ""
	}
	return pj.Version
}

func nodeVersion() string {
	out, _ := exec.Command("node", "--version").Output()
	return strings.TrimSpace(string(out))
}

// portkeyArgv starts the gateway on port, without its web console.
func (e *env) portkeyArgv(port int) []string {
	node, _ := lookPath("node")
	abs, _ := filepath.Abs(portkeyServer(e.o.portkey))
	return []string{node, abs, "--port=" + strconv.Itoa(port), "--headless"}
}

// portkeyEnv: production mode (no console, no dev logging).
var portkeyEnv = []string{"NODE_ENV=production"}

// portkeyHeaders are a request's headers through Portkey to the fake at upstream (host:port):
// the provider, the fake as its host, the key. hold "" is an ordinary request; "0" holds the
// stream after its first event; a duration sends an event every tick.
func portkeyHeaders(upstream, hold string) []string {
	host := "http://" + upstream
	if hold != "" {
		host += "/_hold/" + hold
	}
	return []string{"x-portkey-provider: openai", "x-portkey-custom-host: " + host + "/v1", "Authorization: Bearer " + benchKey}
}

// startPortkey starts the gateway on the port named portKey, pinned like the other proxies.
func (e *env) startPortkey(name, portKey string) (*proc, error) {
	p, err := start(e.dir, name, e.p.ProxyCPUs, portkeyEnv, e.portkeyArgv(e.port[portKey])...)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(p, e.addr(portKey), 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}
