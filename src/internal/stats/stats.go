// Package stats holds airelay's counters: per provider, per device, and per device and provider.
//
// Counters are atomics reached through pointers that the relay and gateway look up once per
// connection or request, never per byte. They survive config reloads (keyed by provider ID and
// device address). This package renders them (/status JSON, /metrics) but never reads config
// secrets: it only knows IDs and names.
package stats

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MaxDevices bounds the per-device table so a flood of source addresses cannot grow memory
// without limit. When it is full, the devices idle longest (nothing open, not seen for
// RetireIdle) are retired to make room for a new one; only when none can be are new devices
// counted under the "other" device.
const MaxDevices = 4096

// RetireIdle: a device seen more recently than this is not retired (it may be between its
// lookup and its first count).
const RetireIdle = time.Second

// retireBatch devices are retired at once, so a full table is not scanned for each new device.
const retireBatch = MaxDevices / 16

// Counters is one set of counters.
type Counters struct {
	Conns     atomic.Uint64 // relay connections accepted and routed
	Active    atomic.Int64  // relay connections and gateway requests in progress
	Requests  atomic.Uint64 // gateway requests
	Denied    atomic.Uint64 // refused by access rules
	Errors    atomic.Uint64 // upstream failures (dial, timeout, reset) seen by relay or gateway
	BytesUp   atomic.Uint64 // device → provider
	BytesDown atomic.Uint64 // provider → device
	TokensIn  atomic.Uint64 // prompt/input tokens reported by the provider
	TokensOut atomic.Uint64 // completion/output tokens
	// TokensEstimated counts gateway answers whose usage the provider did not report, for a
	// device with a daily token quota: their tokens were estimated from the bytes (and are in
	// TokensIn/TokensOut).
	TokensEstimated atomic.Uint64
	// WriteTimeouts counts connections cut because the device took no byte of what was sent
	// to it for write_timeout (relay and gateway).
	WriteTimeouts atomic.Uint64
	Status        [6]atomic.Uint64 // gateway responses by class: [1]=1xx … [5]=5xx; [0] other
}

// AddStatus counts one response status code.
func (c *Counters) AddStatus(code int) {
	i := code / 100
	if i < 1 || i > 5 {
		i = 0
	}
	c.Status[i].Add(1)
}

// Device is one LAN device, keyed by address.
type Device struct {
	Addr     netip.Addr
	Total    Counters
	lastSeen atomic.Int64 // unix nanoseconds
	retired  atomic.Bool
	mac      atomic.Pointer[string]
	mu       sync.Mutex
	perProv  map[string]*Counters
}

// Touch records activity now.
func (d *Device) Touch() { d.lastSeen.Store(time.Now().UnixNano()) }

// LastSeen is when the device was last touched.
func (d *Device) LastSeen() time.Time { return time.Unix(0, d.lastSeen.Load()) }

// Retired reports whether the registry retired d to make room: whoever keeps d across requests
// (a keep-alive connection) asks Registry.Device for the device again.
func (d *Device) Retired() bool { return d.retired.Load() }

// SetMAC records the device's MAC once known.
func (d *Device) SetMAC(mac net.HardwareAddr) {
	if len(mac) == 0 {
		return
	}
	if cur := d.mac.Load(); cur != nil && *cur == string(mac) {
		return
	}
	s := mac.String()
	d.mac.Store(&s)
}

// MAC returns the recorded MAC, or "".
func (d *Device) MAC() string {
	if p := d.mac.Load(); p != nil {
		return *p
	}
	return ""
}

// Provider returns the device's counters for one provider.
func (d *Device) Provider(id string) *Counters {
	d.mu.Lock()
	c := d.perProv[id]
	if c == nil {
		if d.perProv == nil {
			d.perProv = map[string]*Counters{}
		}
		c = new(Counters)
		d.perProv[id] = c
	}
	d.mu.Unlock()
	return c
}

// Registry is every counter of one airelay process.
type Registry struct {
	Start time.Time

	mu        sync.RWMutex
	providers map[string]*Counters
	devices   map[netip.Addr]*Device
	other     *Device   // devices past MaxDevices
	collect   bool      // retired devices are kept in retired until released
	retired   []*Device // for the collector (see CollectRetired)
	news      []*Device // for the collector: devices made or retired since it last took them
	newsLost  bool      // more of them than MaxDevices: the collector looks at all
	hasNews   atomic.Bool
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		Start:     time.Now(),
		providers: map[string]*Counters{},
		devices:   map[netip.Addr]*Device{},
		other:     &Device{},
	}
}

// Provider returns the counters of a provider, created on first use.
func (r *Registry) Provider(id string) *Counters {
	r.mu.RLock()
	c := r.providers[id]
	r.mu.RUnlock()
	if c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c = r.providers[id]; c == nil {
		c = new(Counters)
		r.providers[id] = c
	}
	return c
}

// Device returns the counters of a device, created on first use.
func (r *Registry) Device(addr netip.Addr) *Device {
	addr = addr.Unmap()
	r.mu.RLock()
	d := r.devices[addr]
	r.mu.RUnlock()
	if d == nil {
		r.mu.Lock()
		if d = r.devices[addr]; d == nil {
			if len(r.devices) >= MaxDevices {
				r.retire(time.Now())
			}
			if len(r.devices) >= MaxDevices {
				d = r.other
			} else {
				d = &Device{Addr: addr}
				r.devices[addr] = d
				r.note(d)
			}
		}
		r.mu.Unlock()
	}
	d.Touch()
	return d
}

// retire takes up to retireBatch of the devices idle longest out of the table: none with a
// connection or request open, none seen within RetireIdle. With a collector, a retired device
// waits in r.retired until released (and none is retired while that list is full), so what it
// counted, and what a holder still adds to it, is not lost. Called with r.mu held.
func (r *Registry) retire(now time.Time) {
	n := retireBatch
	if r.collect {
		n = min(n, MaxDevices-len(r.retired))
	}
	if n <= 0 {
		return
	}
	before := now.Add(-RetireIdle).UnixNano()
	var idle []*Device
	for _, d := range r.devices {
		if d.Total.Active.Load() == 0 && d.lastSeen.Load() < before {
			idle = append(idle, d)
		}
	}
	slices.SortFunc(idle, func(a, b *Device) int { return cmp.Compare(a.lastSeen.Load(), b.lastSeen.Load()) })
	for _, d := range idle[:min(n, len(idle))] {
		delete(r.devices, d.Addr)
		d.retired.Store(true)
		if r.collect {
			r.retired = append(r.retired, d)
			r.note(d)
		}
	}
}

// note tells the collector about d. Called with r.mu held.
func (r *Registry) note(d *Device) {
	if !r.collect {
		return
	}
	if len(r.news) < MaxDevices {
		r.news = append(r.news, d)
	} else {
		r.newsLost = true
	}
	r.hasNews.Store(true)
}

// TakeNews returns the devices made or retired since the last call (all: too many to list;
// look at Devices and Retired), for the collector.
func (r *Registry) TakeNews() (ds []*Device, all bool) {
	if !r.hasNews.Load() {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ds, all = r.news, r.newsLost
	r.news, r.newsLost = nil, false
	r.hasNews.Store(false)
	return ds, all
}

// Full reports whether the device table is full: a device not in it now went to "other".
func (r *Registry) Full() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.devices) >= MaxDevices
}

// CollectRetired makes the registry keep the devices it retires until Release, and list the
// devices it makes and retires for TakeNews (the usage book does, so that quotas and history
// lose nothing of them and see a device's new address at once).
func (r *Registry) CollectRetired() {
	r.mu.Lock()
	r.collect = true
	r.mu.Unlock()
}

// Retired returns the retired devices not yet released.
func (r *Registry) Retired() []*Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.retired)
}

// Release forgets the retired devices in ds.
func (r *Registry) Release(ds map[*Device]struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retired = slices.DeleteFunc(r.retired, func(d *Device) bool { _, ok := ds[d]; return ok })
}

// Conn is what a relay connection or gateway request holds: the three counter sets it updates.
type Conn struct {
	Provider, Device, DeviceProvider *Counters
}

// Begin counts the start of a connection or request of a device to a provider.
func (r *Registry) Begin(d *Device, providerID string) Conn {
	c := Conn{Provider: r.Provider(providerID), Device: &d.Total, DeviceProvider: d.Provider(providerID)}
	c.Provider.Active.Add(1)
	c.Device.Active.Add(1)
	c.DeviceProvider.Active.Add(1)
	return c
}

// End counts its end.
func (c Conn) End() {
	c.Provider.Active.Add(-1)
	c.Device.Active.Add(-1)
	c.DeviceProvider.Active.Add(-1)
}

// Each applies f to each of the three counter sets, for the counters without a helper here.
func (c Conn) Each(f func(*Counters)) {
	f(c.Provider)
	f(c.Device)
	f(c.DeviceProvider)
}

// AddBytes counts bytes in both directions.
func (c Conn) AddBytes(up, down uint64) {
	c.Each(func(k *Counters) {
		if up > 0 {
			k.BytesUp.Add(up)
		}
		if down > 0 {
			k.BytesDown.Add(down)
		}
	})
}

// AddTokens counts tokens reported by a provider.
func (c Conn) AddTokens(in, out uint64) {
	c.Each(func(k *Counters) {
		k.TokensIn.Add(in)
		k.TokensOut.Add(out)
	})
}

// Devices returns the devices seen so far (the "other" device last, when it was used), for
// samplers that run off the hot path.
func (r *Registry) Devices() []*Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ds := make([]*Device, 0, len(r.devices)+1)
	for _, d := range r.devices {
		ds = append(ds, d)
	}
	if r.other.lastSeen.Load() != 0 {
		ds = append(ds, r.other)
	}
	return ds
}

// Values copies the counters.
func (c *Counters) Values() Values { return c.values() }

// EachProvider calls f with a copy of the device's counters for each provider it used.
func (d *Device) EachProvider(f func(id string, v Values)) {
	d.mu.Lock()
	vs := make(map[string]Values, len(d.perProv))
	for id, c := range d.perProv {
		vs[id] = c.values()
	}
	d.mu.Unlock()
	for id, v := range vs {
		f(id, v)
	}
}

// Lookup returns the device at addr, or nil when it has not been seen; unlike Device it never
// creates one.
func (r *Registry) Lookup(addr netip.Addr) *Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.devices[addr.Unmap()]
}
