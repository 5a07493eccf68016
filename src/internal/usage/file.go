package usage

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airelay/airelay/src/internal/jsonw"
	"github.com/airelay/airelay/src/internal/stats"
)

// fileVersion is the history file's format; another one is set aside like a corrupt file.
const fileVersion = 1

// maxCount bounds each counter of a row: 2^50 (about 10^15) of anything in one day for one
// device is more than a router can move (bytes at 10 Gbit/s all day are 2^47). A row above it
// is corrupt, not a figure to add to.
const maxCount = 1 << 50

// tempPrefix starts the names of the temporary files Save writes and renames.
const tempPrefix = ".history-"

type fileDoc struct {
	Version int       `json:"version"`
	Saved   time.Time `json:"saved"`
	Rows    []Row     `json:"rows"`
}

// Save writes the history to path atomically (a temporary file, fsync, rename), so a power
// cut leaves the old file or the new one, never half of one. It samples first and writes only
// when something changed since the last save.
func (b *Book) Save(path string) error {
	b.Sample()
	b.mu.Lock()
	if !b.dirty {
		b.mu.Unlock()
		return nil
	}
	doc := fileDoc{Version: fileVersion, Saved: b.now().UTC()}
	for day, ks := range b.days {
		for k, r := range ks {
			doc.Rows = append(doc.Rows, k.row(day, r))
		}
	}
	b.dirty = false
	b.mu.Unlock()
	data, err := jsonw.Marshal(&doc)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix+"*")
	if err != nil {
		b.markDirty()
		return fmt.Errorf("usage history %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		b.markDirty()
		return fmt.Errorf("usage history %s: %w", path, err)
	}
	return nil
}

func (b *Book) markDirty() {
	b.mu.Lock()
	b.dirty = true
	b.mu.Unlock()
}

// Load reads the history file back. A missing file is an empty history. A file that does not
// read (truncated, corrupt, another version, a counter beyond belief) is renamed to
// path.corrupt-<time> and reported; the book starts empty and nothing is lost that could have
// been read. Days beyond keep are dropped; today's rows count toward today's totals, so quotas
// survive a restart. Temporary files a save killed midway left beside path are removed first
// (flash fills up otherwise).
func (b *Book) Load(path string) (setAside string, err error) {
	removeStaleTemps(path)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("usage history %s: %w", path, err)
	}
	var doc fileDoc
	rows, perr := parseFile(data, &doc)
	if perr != nil {
		aside := path + ".corrupt-" + b.now().UTC().Format("20060102T150405Z")
		if rerr := os.Rename(path, aside); rerr != nil {
			return "", fmt.Errorf("usage history %s: %v; setting it aside failed: %w", path, perr, rerr)
		}
		return aside, fmt.Errorf("usage history %s: %v (set aside as %s; starting empty)", path, perr, aside)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range rows {
		// rows of one device (written per address by older versions) add up under its ID
		a := netip.MustParseAddr(r.Addr).Unmap()
		mac, _ := net.ParseMAC(r.MAC) // checked by parseFile; "" is none
		id := IDOf(a, mac)
		row := b.row(r.Day, Key{id, r.Provider})
		row.add(r.Counts)
		row.addr = shown(row.addr, a)
		if r.Day != b.today {
			continue
		}
		t := b.ids[id]
		if t == nil && len(b.ids) < maxIDs {
			t = &tally{members: map[*stats.Device]*devState{}}
			b.ids[id] = t
		}
		if t != nil {
			t.used.add(r.Counts)
			t.addr = shown(t.addr, a)
		}
	}
	b.prune()
	return "", nil
}

// parseFile checks every row, so a file that reads at all reads whole.
func parseFile(data []byte, doc *fileDoc) ([]Row, error) {
	if err := jsonw.Unmarshal(data, doc); err != nil {
		return nil, fmt.Errorf("not a history file: %v", err)
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("history format %d, this airelay reads %d", doc.Version, fileVersion)
	}
	for i, r := range doc.Rows {
		if _, err := time.Parse(time.DateOnly, r.Day); err != nil {
			return nil, fmt.Errorf("row %d: day %q", i, r.Day)
		}
		if _, err := netip.ParseAddr(r.Addr); err != nil {
			return nil, fmt.Errorf("row %d: address %q", i, r.Addr)
		}
		if _, err := net.ParseMAC(r.MAC); r.MAC != "" && err != nil {
			return nil, fmt.Errorf("row %d: MAC %q", i, r.MAC)
		}
		if r.Provider == "" || len(r.Provider) > 64 {
			return nil, fmt.Errorf("row %d: provider %q", i, r.Provider)
		}
		c := r.Counts
		for _, v := range [...]uint64{c.TokensIn, c.TokensOut, c.Requests, c.BytesUp, c.BytesDown, c.Denied} {
			if v > maxCount {
				return nil, fmt.Errorf("row %d: a counter of %d, beyond what a day can hold", i, v)
			}
		}
	}
	return doc.Rows, nil
}

// removeStaleTemps removes the temporary files of saves that never finished (the process was
// killed between writing and renaming): the files in path's directory named like Save's
// temporary files (tempPrefix and digits), never path itself. Called at start, before any save.
func removeStaleTemps(path string) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		digits, ok := strings.CutPrefix(name, tempPrefix)
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		if p := filepath.Join(dir, name); p != filepath.Clean(path) {
			os.Remove(p)
		}
	}
}
