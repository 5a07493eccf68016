package gateway

import (
	"bytes"
	"io"
	"time"

	"github.com/airelay/airelay/src/internal/h1"
	"github.com/airelay/airelay/src/internal/stats"
)

var (
	sseData     = []byte("data:")
	eventStream = []byte("text/event-stream")
	crlf        = []byte("\r\n")
	lastChunk   = []byte("0\r\n\r\n") // never written to: Write does not keep or change it
)

// How the answer's body goes to the device.
const (
	passNone    = iota // no body (HEAD, 1xx, 204, 304)
	passLength         // Content-Length: bytes as they come
	passChunked        // chunked: the provider's framing, untouched
	passEncode         // data re-framed: chunked for HTTP/1.1, until close for HTTP/1.0
)

// respond sends the provider's answer to the device: the head at once (with the first body
// bytes that came with it), then the body as it arrives, each read written at once, so an
// event of a stream reaches the device as soon as the provider wrote it. Usage is scanned from
// the data on the side; a stream_usage answer goes through usageStrip.
func (x *exchange) respond() {
	mode, keep := x.settle()
	out := x.answerHead(mode, keep)
	x.res.Forget() // its fields point into the buffer that goes back to its pool between events
	var err error
	switch mode {
	case passNone:
		x.bodyEnd = true
		err = devErr(x.d.write(*out))
		putOut(out)
	case passLength, passChunked:
		// pass's steps, so that no frame of pass's stays on the stack while a stream waits.
		err = x.passSeg(out, mode)
		if err == nil && !x.bodyEnd {
			if x.uc.sock != nil {
				err = x.passRaw(mode)
			} else {
				err = x.passOn(mode)
			}
		}
	default:
		err = x.encode(out)
	}
	x.stopSweep()
	x.end(err, keep, x.res.Close)
}

// settle decides how the answer goes to the device (mode) and whether the connection is kept,
// and gives back what the request held. It and answerHead are not inlined: respond's frame
// stays on the goroutine's stack for as long as a stream lasts, and the smaller the stack in
// use while a stream waits, the smaller the runtime shrinks it (a quarter of it at most).
//
//go:noinline
func (x *exchange) settle() (mode int, keep bool) {
	res, r := &x.res, x.r
	x.committed = true
	x.streaming = true
	x.timeoutErr = errStreamIdle
	// The stream idle limit is set when the read deadline next fires (see upFill), as if data
	// had just come: the head just did.
	x.deadline, x.gotData = time.Time{}, true
	// The request is through: its buffers go back (the device's only when no next request is
	// waiting in it).
	if x.kept != nil {
		putOut(x.kept)
		x.kept = nil
	}
	if x.asking != nil {
		putOut(x.asking)
		x.asking = nil
	}

	ce := res.Get("content-encoding")
	x.noScan = len(ce) > 0 && !h1.EqualFold(ce, "identity")
	x.sse = bytes.HasPrefix(res.Get("content-type"), eventStream)
	mode = passEncode
	switch {
	case string(r.Method) == "HEAD" || h1.NoBody(res.Status):
		mode = passNone
	case x.askUsage && res.Status == h1.StatusOK && x.sse:
		// The device's bytes are counted as they leave the strip; its buffer comes with its
		// first read.
		x.uncounted = true
		x.strip = usageStrip{r: dataReader{x}, counted: x.conn}
	case res.Chunked && r.Minor == 1:
		mode = passChunked
	case res.ContentLength >= 0:
		mode = passLength
	}
	x.left = res.ContentLength
	keep = !r.Close && !x.g.isClosing()
	if mode == passEncode && r.Minor == 0 {
		keep = false
	}
	x.rest = ""
	x.d.release() // d.req is not used past here: its buffer need not last the stream
	return mode, keep
}

// answerHead is the head that goes to the device, in a pooled buffer.
//
//go:noinline
func (x *exchange) answerHead(mode int, keep bool) *[]byte {
	res, r := &x.res, x.r
	head := (*x.ub)[x.ur : x.ur+x.headLen]
	out := getOut() // the head; pass and encode give it back once it went out
	b := append(*out, "HTTP/1.1 "...)
	line := head[9:]
	for i, c := range line {
		if c == '\r' {
			line = line[:i]
			break
		}
	}
	b = append(b, line...)
	b = append(b, '\r', '\n')
	for _, h := range res.Headers {
		if res.Hop(h.Name) && !(mode == passNone && h1.EqualFold(h.Name, "content-length")) {
			continue
		}
		b = append(b, h.Name...)
		b = append(b, ':', ' ')
		b = append(b, h.Value...)
		b = append(b, '\r', '\n')
	}
	switch {
	case mode == passLength:
		b = append(b, "Content-Length: "...)
		b = appendInt(b, int(res.ContentLength))
		b = append(b, '\r', '\n')
	case mode == passChunked || mode == passEncode && r.Minor == 1:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, '\r', '\n')
	x.ur += x.headLen
	*out = b
	return out
}

// end settles an answer: tokens counted, the provider's connection kept or closed, a cut
// stream counted and logged.
func (x *exchange) end(err error, keep, upClose bool) {
	in, out := x.scan.Tokens()
	if in|out == 0 && x.quota && x.status/100 == 2 && x.hasBody {
		// The provider reported no usage (it was not asked, the stream was cut before the
		// end, the answer was compressed): a device with a token quota is charged an estimate.
		in, out = x.estimate()
		x.conn.Each(func(k *stats.Counters) { k.TokensEstimated.Add(1) })
		x.g.o.Log.Info("gateway: no usage reported; tokens estimated from the bytes", "device", x.dev.Addr.String(),
			"provider", x.p.ID, "tokens_in", in, "tokens_out", out)
	}
	if in|out != 0 {
		x.conn.AddTokens(in, out)
		x.tokIn, x.tokOut = in, out
	}
	if err == nil && x.bodyEnd && x.ur == x.uw && !upClose {
		x.pl.put(x.uc)
		x.uc = nil
	}
	switch {
	case err == nil:
		x.cut = !keep
	case err == errDeviceGone:
		x.devGone = true
	case err == errWriteTimeout:
		x.devGone = true
		x.conn.Each(func(k *stats.Counters) { k.WriteTimeouts.Add(1) })
		x.g.o.Log.Warn("gateway: device cut: it took no byte for write_timeout", "device", x.d.addr.String(), "provider", x.p.ID)
	case err == errStreamIdle:
		x.cut = true
		x.conn.Each(func(k *stats.Counters) { k.Errors.Add(1) })
		x.g.o.Log.Warn("gateway: stream cut", "provider", x.p.ID, "err", err)
	default:
		x.cut = true
		x.conn.Each(func(k *stats.Counters) { k.Errors.Add(1) })
		x.g.o.Log.Warn("gateway: provider broke off", "provider", x.p.ID, "err", err)
	}
}

// passOn sends the rest of the body as the provider framed it, after passSeg sent the head and
// what came with it: each read goes to the device in one write, while the framing is followed
// to find the data and the end. passRaw does the same on a socket it can reach.
func (x *exchange) passOn(mode int) error {
	for {
		if err := x.upFill(bufSize); err != nil {
			return x.upErrAfterHead(err)
		}
		if err := x.passSeg(nil, mode); err != nil || x.bodyEnd {
			return err
		}
	}
}

// passSeg follows the framing over the bytes read, x.ub[x.ur:x.uw], and writes the part of them
// that is the body to the device, after out (the head) when it is not nil; all of them unless
// the body ends among them.
func (x *exchange) passSeg(out *[]byte, mode int) error {
	seg := []byte(nil)
	if x.ub != nil {
		seg = (*x.ub)[x.ur:x.uw]
	}
	if mode == passChunked {
		used := 0
		for used < len(seg) && !x.bodyEnd {
			n, data, done, err := x.ch.Next(seg[used:])
			used += n
			x.sawData(data)
			if err != nil {
				if out != nil {
					putOut(out)
				}
				return err
			}
			x.bodyEnd = done
		}
		seg = seg[:used]
	} else {
		n := min(int64(len(seg)), x.left)
		seg = seg[:n]
		x.left -= n
		x.sawData(seg)
		x.bodyEnd = x.left == 0
	}
	x.ur += len(seg)
	var err error
	if out != nil {
		*out = append(*out, seg...)
		err = x.d.write(*out)
		putOut(out)
	} else if len(seg) > 0 {
		err = x.d.write(seg)
	}
	if err != nil {
		return devErr(err)
	}
	return nil
}

// passRaw is pass on a provider's socket, plain or TLS: the reads (readIn) and the writes to the
// device in one RawRead for as long as the answer flows, so that between events the gateway
// waits for the poller's word that more came instead of reading to find nothing (a system call
// per event).
func (x *exchange) passRaw(mode int) error {
	x.passMode = mode
	if !x.sw.on {
		x.startSweep()
	}
	for {
		x.upErr, x.passErr, x.uc.drained = nil, nil, false
		err := x.uc.sock.Read(x.passFn)
		switch {
		case x.passErr != nil:
			return x.passErr
		case x.bodyEnd:
			return nil
		case err == nil:
			err = x.upErr
		}
		if err = x.waited(err); err != nil {
			return x.upErrAfterHead(err)
		}
	}
}

// rawPass is passRaw's RawRead function: it reads into x.ub and passes what came on, until the
// body ends, a read or write fails (true), or the socket is empty (false: the runtime parks the
// goroutine until the poller says more came). Between reads it holds no buffer.
func (x *exchange) rawPass(fd uintptr) bool {
	for {
		if x.ub == nil {
			x.ub = getBuf()
		}
		x.ur, x.uw = 0, 0 // passSeg used all before, unless the body ended
		n, err := x.uc.readIn(fd, *x.ub)
		switch {
		case err == errWouldBlock:
			putBuf(x.ub)
			x.ub = nil
			return false
		case err != nil:
			x.upErr = err
			return true
		}
		x.uw = n
		x.fresh()
		if x.passErr = x.passSeg(nil, x.passMode); x.passErr != nil || x.bodyEnd {
			return true
		}
		if x.sw.swept.Load() { // the device left (see sweep)
			x.devGone = true
			x.passErr = errDeviceGone
			return true
		}
	}
}

// devErr is what a failed write to the device means for the answer: the device stopped
// reading (errWriteTimeout), or it is gone.
func devErr(err error) error {
	if err == errWriteTimeout {
		return err
	}
	return errDeviceGone
}

// upErrAfterHead tells a provider that ended early from a device that left.
func (x *exchange) upErrAfterHead(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// estimate is the tokens of an answer whose usage is not known, from the bytes: the request's
// at four a token (the rule of thumb for English text; JSON around it counts too, so it errs
// high, as a quota should), and the answer's as many as its SSE events (a streamed completion
// sends about one token each) or, not streamed, at four bytes a token.
func (x *exchange) estimate() (in, out uint64) {
	in = (x.upN + 3) / 4
	out = (x.downN + 3) / 4
	if x.sse {
		out = x.events
	}
	return max(in, 1), out
}

// sawData counts and scans body data on its way to the device.
func (x *exchange) sawData(data []byte) {
	if len(data) == 0 {
		return
	}
	x.downN += uint64(len(data))
	if x.quota && x.sse {
		x.events += uint64(bytes.Count(data, sseData))
	}
	if !x.noScan {
		x.scan.Feed(data)
	}
	if !x.uncounted {
		x.conn.AddBytes(0, uint64(len(data)))
	}
}

// next returns the next data of the answer's body, as a slice of x.ub; io.EOF at its end.
func (x *exchange) next() ([]byte, error) {
	for {
		if x.bodyEnd {
			return nil, io.EOF
		}
		if x.ur < x.uw {
			seg := (*x.ub)[x.ur:x.uw]
			switch {
			case x.res.Chunked:
				n, data, done, err := x.ch.Next(seg)
				x.ur += n
				if err != nil {
					return nil, err
				}
				x.bodyEnd = done
				if len(data) > 0 {
					x.sawData(data)
					return data, nil
				}
				continue
			case x.left >= 0:
				n := min(int64(len(seg)), x.left)
				x.left -= n
				x.ur += int(n)
				x.bodyEnd = x.left == 0
				x.sawData(seg[:n])
				return seg[:n], nil
			default:
				x.ur = x.uw
				x.sawData(seg)
				return seg, nil
			}
		}
		if x.left == 0 && !x.res.Chunked {
			x.bodyEnd = true
			continue
		}
		if err := x.upFill(bufSize); err != nil {
			if err == io.EOF && !x.res.Chunked && x.left < 0 {
				x.bodyEnd = true // the answer ran until the provider closed
				x.res.Close = true
				continue
			}
			return nil, x.upErrAfterHead(err)
		}
	}
}

// dataReader is the answer's data as an io.ReadCloser, for usageStrip.
type dataReader struct{ x *exchange }

func (d dataReader) Read(p []byte) (int, error) {
	x := d.x
	if x.pend == nil {
		data, err := x.next()
		if err != nil {
			return 0, err
		}
		x.pend = data
	}
	n := copy(p, x.pend)
	x.pend = x.pend[n:]
	if len(x.pend) == 0 {
		x.pend = nil
	}
	return n, nil
}

func (dataReader) Close() error { return nil }

// encode sends the data re-framed: chunked to an HTTP/1.1 device, as it is to an HTTP/1.0 one
// (which reads until the close). The answers that come here: stream_usage streams, answers
// that run until the provider closes, and chunked answers to HTTP/1.0 devices. On the
// provider's socket (plain or TLS) it runs inside one RawRead, as passRaw does: a read that took
// all the socket held is followed by a wait for the poller, not by a read that finds nothing.
func (x *exchange) encode(out *[]byte) error {
	x.enc = encodeState{chunked: x.r.Minor == 1, out: out}
	x.enc.src = dataReader{x}
	if x.strip.r != nil {
		x.enc.src = &x.strip
	}
	// (No defer for encodeDone: encode's frame stays on the stack while a stream lasts, see
	// Gateway.handle.)
	if x.uc.sock == nil {
		for {
			if done, err := x.encodeStep(); done {
				x.encodeDone()
				return err
			}
		}
	}
	if !x.sw.on {
		x.startSweep()
	}
	for {
		x.inRaw, x.uc.drained = true, false
		err := x.uc.sock.Read(x.encFn)
		x.inRaw = false
		if x.enc.done {
			err = x.enc.err
			x.encodeDone()
			return err
		}
		if err = x.waited(err); err != nil {
			x.encodeDone()
			return x.upErrAfterHead(err)
		}
	}
}

// encodeDone gives back what encode held.
func (x *exchange) encodeDone() {
	x.enc.idle()
	if x.enc.out != nil {
		putOut(x.enc.out)
	}
	x.enc = encodeState{}
}

// encodeState is what encode keeps across its steps.
type encodeState struct {
	chunked bool
	src     io.Reader
	buf     *[]byte // nil while rawEncode waits
	out     *[]byte // the head, sent with the first data; nil once sent
	done    bool    // rawEncode: encode is through, with err
	err     error
}

// idle gives encode's buffer back.
func (e *encodeState) idle() {
	if e.buf != nil {
		putBuf(e.buf)
		e.buf = nil
	}
}

// rawEncode is encode's RawRead function on a provider's socket: it runs encode's steps
// until one ends it (true) or the socket is empty (false: the runtime parks the goroutine until
// the poller says more came).
func (x *exchange) rawEncode(fd uintptr) bool {
	x.rawFD = fd
	for {
		done, err := x.encodeStep()
		if err == errWouldBlock {
			// Between events a stream holds no buffer.
			x.enc.idle()
			x.strip.idle()
			return false
		}
		if done {
			x.enc.done, x.enc.err = true, err
			return true
		}
	}
}

// encodeStep reads the next data and writes it to the device, framed; done when the answer is
// through or broke off, with why.
func (x *exchange) encodeStep() (done bool, _ error) {
	const room = 18
	e := &x.enc
	if e.buf == nil {
		e.buf = getBuf()
	}
	b := *e.buf
	n, err := e.src.Read(b[room : len(b)-2])
	if n > 0 {
		start := room
		if e.chunked {
			var tmp [16]byte
			hdr := h1.AppendChunkHeader(tmp[:0], n)
			start = room - len(hdr)
			copy(b[start:], hdr)
			b[room+n], b[room+n+1] = '\r', '\n'
			n += 2
		}
		var werr error
		if e.out != nil {
			*e.out = append(*e.out, b[start:room+n]...)
			werr = x.d.write(*e.out)
			putOut(e.out)
			e.out = nil
		} else {
			werr = x.d.write(b[start : room+n])
		}
		if werr != nil {
			return true, devErr(werr)
		}
	}
	switch {
	case err == errWouldBlock:
		return false, err
	case err == io.EOF:
		x.bodyEnd = true
		var werr error
		switch {
		case e.out != nil && e.chunked:
			*e.out = append(*e.out, "0\r\n\r\n"...)
			werr = x.d.write(*e.out)
		case e.out != nil:
			werr = x.d.write(*e.out)
		case e.chunked:
			werr = x.d.write(lastChunk)
		}
		if werr != nil {
			return true, devErr(werr)
		}
		return true, nil
	case err != nil:
		if e.out != nil { // nothing sent yet: the head at least
			x.d.write(*e.out)
		}
		return true, err
	}
	return false, nil
}
