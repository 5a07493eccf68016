package e2e

import "time"

// statusDoc is the part of the /status document (`airelay status --json`, also what LuCI
// reads) that the scenarios check, decoded from the outside as any consumer would.
type statusDoc struct {
	Config struct {
		Generation uint64    `json:"generation"`
		LoadedAt   time.Time `json:"loaded_at"`
		LastError  string    `json:"last_error"`
		State      string    `json:"state"`   // current, last_valid, fail_closed
		Message    string    `json:"message"` // why, when not current
	} `json:"config"`
	Providers []providerRow `json:"providers"`
	Devices   []deviceRow   `json:"devices"`
}

// counters are the values kept per provider, per device and per device and provider.
type counters struct {
	Conns     uint64 `json:"connections"`
	Active    int64  `json:"active"`
	Requests  uint64 `json:"requests"`
	Denied    uint64 `json:"denied"`
	Errors    uint64 `json:"errors"`
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
	TokensIn  uint64 `json:"tokens_in"`
	TokensOut uint64 `json:"tokens_out"`
	// TokensEstimated: answers whose tokens were estimated (usage not reported).
	TokensEstimated uint64 `json:"tokens_estimated"`
}

type providerRow struct {
	ID string `json:"id"`
	counters
}

type deviceRow struct {
	Addr       string              `json:"addr"`
	MAC        string              `json:"mac"`
	Client     string              `json:"client"`
	Name       string              `json:"name"`
	NameSource string              `json:"name_source"`
	Providers  map[string]counters `json:"providers"`
	Today      *struct {
		Tokens, Requests, Bytes uint64
	} `json:"today"`
	Quota *struct {
		Tokens, Requests, Bytes int64
	} `json:"quota"`
	Schedule *struct {
		Open    bool      `json:"open"`
		Windows string    `json:"windows"`
		Next    time.Time `json:"next"`
	} `json:"schedule"`
	counters
}
