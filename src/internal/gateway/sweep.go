package gateway

import (
	"sync/atomic"
	"time"
)

// While an answer streams, whether its device is still there is checked from one goroutine
// for every stream (the sweeper), not by a read deadline per stream that fires every
// probeEvery: with a thousand streams that was 500 wake-ups a second, and a deadline moved on as
// events flow costs a wake-up too (the runtime's timers move lazily). A stream's own read
// deadline is then only its stream_idle_timeout, moved on at most once per half of it.
//
// The sweeper looks every sweepEvery; a stream that got nothing from its provider since the
// last look has its device checked (devConn.gone). A device that left is marked (swept) and the
// stream woken by a read deadline in the past, so a silent stream whose device left ends within
// probeEvery, as before. A device that left a flowing stream is found by the next write to it.
const sweepEvery = probeEvery / 2

// aLongTimeAgo is a read deadline that wakes a waiting read at once.
var aLongTimeAgo = time.Unix(1, 0)

// sweepState is an exchange's part in the sweep; the sweeper reads it under Gateway.sweepMu.
type sweepState struct {
	on      bool        // registered: the stream goroutine's own
	flowing atomic.Bool // data came since the sweeper last looked
	swept   atomic.Bool // the sweeper found the device gone
}

// startSweep hands the device check of a streaming answer to the sweeper, and leaves the read
// deadline to stream_idle_timeout.
func (x *exchange) startSweep() {
	x.sw.on = true
	x.sw.flowing.Store(true)
	x.g.sweepAdd(x)
	x.deadline = time.Time{}
	if idle := x.m.StreamIdleTimeout; idle > 0 {
		x.deadline = time.Now().Add(idle)
	}
	x.gotData = false
	x.uc.armed = x.deadline
	x.uc.c.SetReadDeadline(x.deadline)
}

// stopSweep takes the answer out of the sweep. When the sweeper woke it, the provider
// connection's read deadline is in the past: it is not kept.
func (x *exchange) stopSweep() {
	if !x.sw.on {
		return
	}
	x.g.sweepRemove(x)
	x.sw.on = false
	if x.sw.swept.Load() {
		x.res.Close = true
	}
}

func (g *Gateway) sweepAdd(x *exchange) {
	g.sweepMu.Lock()
	if g.sweeping == nil {
		g.sweeping = map[*exchange]struct{}{}
	}
	g.sweeping[x] = struct{}{}
	if !g.sweeper {
		g.sweeper = true
		go g.sweep()
	}
	g.sweepMu.Unlock()
}

func (g *Gateway) sweepRemove(x *exchange) {
	g.sweepMu.Lock()
	delete(g.sweeping, x)
	g.sweepMu.Unlock()
}

// sweep checks the devices of the streams that were silent since its last look, every
// sweepEvery, until no stream is left.
func (g *Gateway) sweep() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for range t.C {
		g.sweepMu.Lock()
		if len(g.sweeping) == 0 {
			g.sweeper = false
			g.sweepMu.Unlock()
			return
		}
		for x := range g.sweeping {
			if x.sw.flowing.Swap(false) || x.sw.swept.Load() {
				continue
			}
			if x.d.gone() {
				x.sw.swept.Store(true)
				x.uc.c.SetReadDeadline(aLongTimeAgo)
			}
		}
		g.sweepMu.Unlock()
	}
}
