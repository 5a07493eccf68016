// Package access decides whether a device may use a provider now, for the relay (per
// connection) and the gateway (per request): the client section's rules (allow/deny, providers),
// its schedule in the router's local time, and its daily quotas against what the device used
// today.
//
//	g := &access.Guard{Usage: book}      // once; g.SetZone(loc) at start and on reload
//	d := g.Check(t, client, p, addr, access.Gateway)
//	if !d.Allowed { … d.Message() … }
//
// A device without a schedule or a quota costs what the rules alone cost: no lock, no
// allocation. It decides only; refusing (a TLS alert, an HTTP error) is the caller's.
package access

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/airelay/airelay/src/internal/config"
	"github.com/airelay/airelay/src/internal/usage"
)

// Path is where the decision is made: the relay sees bytes only, the gateway also requests and
// tokens.
type Path uint8

const (
	Relay Path = iota
	Gateway
)

// Reason says why a device is refused.
type Reason uint8

const (
	OK             Reason = iota
	Denied                // a client rule (access deny, or not among its providers), or default_access deny
	ScheduleClosed        // outside every window of the client's schedule
	QuotaTokens           // daily_tokens used up
	QuotaRequests         // daily_requests used up
	QuotaBytes            // daily_bytes used up
	ConfigInvalid         // no valid config serves and the failing one concerns this device or provider (config.LoadFailClosed)
	QuotaUntracked        // a quota applies but the device's use cannot be counted (too many devices)
	GatewayOff            // the client section says gateway '0': relay only
)

// Decision is the outcome of one check.
type Decision struct {
	Allowed bool
	Reason  Reason
	Client  *config.Client // the matching client section, nil for none
	Until   time.Time      // a closed schedule opens, or a quota resets (local midnight)
	Used    uint64         // for a quota: used today
	Limit   int64          // for a quota: the limit
	CutIn   time.Duration  // allowed with a schedule_cut: open connections end after this; 0: never
	Why     string         // ConfigInvalid: where the config's problems that refuse the device are (section and option)
}

// Guard holds what a check needs besides the config.
type Guard struct {
	Usage *usage.Book      // today's use; nil: quotas are not checked
	Clock func() time.Time // nil: time.Now
	loc   atomic.Pointer[time.Location]
}

// SetZone sets the router's time zone (schedule.Local()).
func (g *Guard) SetZone(loc *time.Location) { g.loc.Store(loc) }

// Zone is the router's time zone as last set.
func (g *Guard) Zone() *time.Location {
	if l := g.loc.Load(); l != nil {
		return l
	}
	return time.Local
}

// Now is the guard's clock (the daemon's, which tests may move).
func (g *Guard) Now() time.Time {
	if g != nil && g.Clock != nil {
		return g.Clock()
	}
	return time.Now()
}

// Check decides for the device at addr, matched to client c (nil: none), using p. On the
// gateway the request being decided is already counted among today's requests. A device on a
// passthrough network (not served, but resolved by a dnsmasq that serves another network) is
// let through the relay with no rule at all, as if airelay were not there.
func (g *Guard) Check(t *config.Table, c *config.Client, p *config.Provider, addr netip.Addr, path Path) Decision {
	d := Decision{Client: c}
	if t.Passthrough(addr) {
		d.Client = nil
		d.Allowed = path == Relay
		if !d.Allowed {
			d.Reason = GatewayOff
		}
		return d
	}
	if why := t.Refusal(c, p); why != "" {
		d.Reason, d.Why = ConfigInvalid, why
		return d
	}
	if !t.Access(c, p) {
		d.Reason = Denied
		return d
	}
	if path == Gateway && c != nil && c.NoGateway {
		d.Reason = GatewayOff
		return d
	}
	q := t.Main.DefaultQuota
	if c != nil {
		q = c.Quota.Or(q)
	}
	hasSchedule := c != nil && len(c.Schedule) > 0
	if g == nil || !hasSchedule && (g.Usage == nil || q == (config.Quota{})) {
		d.Allowed = true
		return d
	}
	now := g.Now().In(g.Zone())
	if hasSchedule {
		if !c.Schedule.Open(now) {
			d.Reason, d.Until = ScheduleClosed, c.Schedule.Next(now)
			return d
		}
		if c.ScheduleCut > 0 {
			if closes := c.Schedule.Next(now); !closes.IsZero() {
				d.CutIn = closes.Add(c.ScheduleCut).Sub(now)
			}
		}
	}
	if g.Usage != nil && q != (config.Quota{}) {
		used, ok := g.Usage.Today(addr)
		if !ok { // refused rather than let past its quota uncounted
			d.Reason = QuotaUntracked
			return d
		}
		midnight := usage.NextMidnight(now, g.Zone())
		over := func(r Reason, u uint64, limit int64) bool {
			if limit > 0 && u >= uint64(limit) {
				d.Reason, d.Used, d.Limit, d.Until = r, u, limit, midnight
				return true
			}
			return false
		}
		if over(QuotaBytes, used.Bytes(), q.Bytes) ||
			path == Gateway && (over(QuotaTokens, used.Tokens(), q.Tokens) || over(QuotaRequests, max(used.Requests, 1)-1, q.Requests)) {
			return d
		}
	}
	d.Allowed = true
	return d
}

// Message says why in words a person reads: what closed, for whom, until when (in the router's
// local time, as the schedule is written).
func (d Decision) Message(now time.Time) string {
	who := "this device"
	if d.Client != nil {
		who = "'" + d.Client.ID + "'"
		if d.Client.Name != "" {
			who = "'" + d.Client.Name + "'"
		}
	}
	in := ""
	if wait := d.Until.Sub(now).Round(time.Minute); !d.Until.IsZero() && wait > 0 {
		in = " (in " + strings.TrimSuffix(wait.String(), "0s") + ")"
	}
	until := ""
	if !d.Until.IsZero() {
		until = " until " + d.Until.Format("Mon 15:04") + in
	}
	switch d.Reason {
	case Denied:
		return "AI access is denied for " + who + " by the router's rules"
	case ScheduleClosed:
		return "AI access for " + who + " is closed by its schedule" + until
	case QuotaTokens:
		return fmt.Sprintf("the daily token quota of %s for %s is used up (%s today); it resets at midnight%s", group(uint64(d.Limit)), who, group(d.Used), in)
	case QuotaRequests:
		return fmt.Sprintf("the daily request quota of %s for %s is used up (%s today); it resets at midnight%s", group(uint64(d.Limit)), who, group(d.Used), in)
	case QuotaBytes:
		return fmt.Sprintf("the daily data quota of %s bytes for %s is used up (%s today); it resets at midnight%s", group(uint64(d.Limit)), who, group(d.Used), in)
	case ConfigInvalid:
		return "AI access for " + who + " is refused until the router's airelay config is fixed (no valid config to serve; the router's log and status say what is wrong): " + d.Why
	case QuotaUntracked:
		return "the router sees too many devices at once to count the use of " + who + ", so its daily quota cannot be checked: it is refused until it can"
	case GatewayOff:
		return "the router's gateway (and its API keys) is not offered to " + who + "; use the provider's own address with your own key"
	}
	return ""
}

// Code is the machine-readable reason for error bodies.
func (d Decision) Code() string {
	return [...]string{"", "access_denied", "schedule_closed", "daily_token_quota", "daily_request_quota", "daily_byte_quota", "config_invalid", "quota_untracked", "gateway_not_allowed"}[d.Reason]
}

func group(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
