package config

import (
	"os"
	"path/filepath"

	uci "github.com/digineo/go-uci"
)

// uciTree puts text where go-uci, which reads only files in a directory, can load it as config
// cfg. First choice: an anonymous memory file (memfd) read back through /proc/self/fd, which
// touches no file system; it saves the daemon about a millisecond of its start on a router.
// Otherwise a private (0700) temporary directory, removed by done.
func uciTree(text []byte) (tree uci.Tree, cfg string, done func(), err error) {
	if tree, cfg, done := memTree(text); tree != nil {
		return tree, cfg, done, nil
	}
	tmp, err := os.MkdirTemp("", "airelay-config-")
	if err != nil {
		return nil, "", nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "airelay"), text, 0o600); err != nil {
		os.RemoveAll(tmp)
		return nil, "", nil, err
	}
	return uci.NewTree(tmp), "airelay", func() { os.RemoveAll(tmp) }, nil
}
