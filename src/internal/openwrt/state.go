package openwrt

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/airelay/airelay/src/internal/jsonw"
)

// Which config the daemon's copy was made from (State.State).
const (
	StateCurrent    = "current"     // /etc/config/airelay passed
	StateLastValid  = "last_valid"  // it did not; the last config that passed serves
	StateFailClosed = "fail_closed" // it did not and none ever did: it is read strictly (config.LoadFailClosed)
)

// State is what `airelay runtime-config` made the daemon's copy from, and why. It writes it
// beside the copy (/var/run/airelay/config-state) and the daemon (`airelay run
// --config-state`), dnsmasq-conf and firewall read it with the copy, so all of them read the
// copy the same way, and status says what serves.
type State struct {
	State   string `json:"state"`             // StateCurrent, StateLastValid or StateFailClosed
	Message string `json:"message,omitempty"` // for people, when not current; never a key
	Errors  string `json:"errors,omitempty"`  // the problems of the user's file, when it did not pass
	// Refused: a reload found the user's file failing and left the copy as it was (the
	// daemon keeps serving what it serves).
	Refused bool `json:"refused,omitempty"`
}

// ReadState reads a state file; a missing file is StateCurrent (no init script wrote one).
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{State: StateCurrent}, nil
	}
	if err != nil {
		return State{}, err
	}
	var st State
	if err := jsonw.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("%s: %v", path, err)
	}
	switch st.State {
	case StateCurrent, StateLastValid, StateFailClosed:
	default:
		return State{}, fmt.Errorf("%s: unknown state %q", path, st.State)
	}
	return st, nil
}

// WriteState replaces path atomically with st (mode 0600).
func WriteState(path string, st State) error {
	b, err := jsonw.Marshal(&st)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// lastValidHeader starts the last-valid file, for whoever opens it.
const lastValidHeader = "# airelay: the last /etc/config/airelay that passed, kept (without its API keys, which stay\n" +
	"# in /etc/config/airelay_keys) to serve when the config does not pass at start or boot.\n" +
	"# Written by the init script; its time is the time it passed.\n"

// LastValid is the text kept as the last valid config: src, which passed, without any
// api_key line (keys live in the keys file and are merged into the daemon's copy from there).
func LastValid(src []byte) []byte {
	return append([]byte(lastValidHeader), MoveKeys(src, nil).Config...)
}

// SaveLastValid keeps src, which passed, as the last valid config at path (mode 0600),
// unless path already holds the same text: flash wears with every write, and the file's time
// stays the time this config first passed.
func SaveLastValid(path string, src []byte) error {
	data := LastValid(src)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return WriteFileAtomic(path, data, 0o600)
}

// WriteFileAtomic replaces path with data: a temporary file in the same directory, mode
// perm, synced, then renamed over path, so a power cut leaves the old file or the new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".airelay-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(perm); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
