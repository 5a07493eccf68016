//go:build !linux || 386

package gateway

// inqReader reads a socket inside a RawRead (see inq_linux.go); here what the socket still
// holds after a read is unknown (inq -1), so the wait comes only after a read that found
// nothing.
type inqReader struct{}

func (*inqReader) read(fd uintptr, b []byte) (n, inq int, err error) {
	n, err = readFD(fd, b)
	return n, -1, err
}

// known reports whether reads tell what the socket still holds: never here.
func (*inqReader) known() bool { return false }

// inqBuilt: this build reads until EAGAIN (no TCP_INQ).
const inqBuilt = false
