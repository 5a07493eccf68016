//go:build !linux || 386

package gateway

// inqReader reads a device's socket for step (see inq_linux.go); here what the socket still
// holds after a read is unknown, so step waits only after a read that found nothing.
type inqReader struct{}

func (*inqReader) read(fd uintptr, b []byte) (n, inq int, err error) {
	n, err = readFD(fd, b)
	return n, -1, err
}
