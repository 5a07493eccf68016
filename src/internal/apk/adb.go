// Package apk writes and reads the packages and repository indexes of apk-tools v3, the package
// manager of OpenWrt 25.12: files in the ADB format ("apk database"), as `apk mkpkg` and
// `apk mkndx` write them, so that `apk add` on a router installs them like feed packages.
//
//	file:       "ADBd" + raw deflate of the container (or "ADB." + the container, uncompressed)
//	container:  magic "ADB." | schema (u32 LE: "pckg" or "indx") | blocks
//	block:      u32 LE (type<<30 | 4+len) | payload | zero padding to 8 bytes
//	            types: 0 ADB (exactly one, first), 1 signature, 2 data (a file's bytes)
//	ADB block:  u8 compat 0 | u8 ver 0 | u16 0 | root value (u32) | the values it points to
//	value:      u32 LE, type in the top 4 bits, an inline integer or an offset into the block:
//	              0x1 int (28 bits inline)   0x2 int32 at offset   0x3 int64 at offset
//	              0x8/0x9/0xa blob with an 8/16/32-bit length prefix at offset
//	              0xd array, 0xe object: at offset, u32 count (slot 0 included), then values
//	            objects store field i in slot i; trailing empty slots are left out; data is
//	            aligned to its length prefix (blobs) or to 4 bytes (integers, objects) and
//	            identical data is written once.
//
//	p := &apk.Package{Info: apk.Info{Name: "airelay", Version: "0.1.0-r5", Arch: "x86_64", …}}
//	p.AddFile("/usr/sbin/airelay", 0o755, bin)
//	err := p.Write(w, nil)
//
// Everything written is a function of the inputs (no clock, no host names, no random numbers
// except in ECDSA signatures, which are made deterministic from the key and the message), so two
// builds of the same inputs are byte-identical. Read parses what apk-tools writes, and Dump renders
// it in the text form of `apk adbdump`; the tests hold the writer to both. This package does not
// read files or know about airelay.
package apk

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
)

// Value types: the top four bits of a value.
const (
	typeSpecial uint32 = 0x00000000
	typeInt     uint32 = 0x10000000
	typeInt32   uint32 = 0x20000000
	typeInt64   uint32 = 0x30000000
	typeBlob8   uint32 = 0x80000000
	typeBlob16  uint32 = 0x90000000
	typeBlob32  uint32 = 0xa0000000
	typeArray   uint32 = 0xd0000000
	typeObject  uint32 = 0xe0000000
	typeError   uint32 = 0xf0000000
	typeMask    uint32 = 0xf0000000
	valueMask   uint32 = 0x0fffffff
)

// Block types.
const (
	blockADB  = 0
	blockSig  = 1
	blockData = 2
	blockExt  = 3
)

// Schemas: the second word of the container.
const (
	SchemaPackage uint32 = 0x676b6370 // "pckg"
	SchemaIndex   uint32 = 0x78646e69 // "indx"
	magic         uint32 = 0x2e424441 // "ADB."
)

// Val is one ADB value as stored.
type Val uint32

func (v Val) typ() uint32   { return uint32(v) & typeMask }
func (v Val) value() uint32 { return uint32(v) & valueMask }

// builder accumulates an ADB block: an 8-byte header whose last word is the root, then the data
// values point to. It writes identical data once, as apk-tools' adb_w_data does.
type builder struct {
	buf  []byte
	seen map[string]uint32
}

func newBuilder() *builder {
	return &builder{buf: make([]byte, 8), seen: map[string]uint32{}}
}

// data appends p aligned to align (a power of two) and returns its offset. With cache, data
// written before at a suitably aligned offset is reused instead.
func (b *builder) data(p []byte, align int, cache bool) uint32 {
	if cache {
		if off, ok := b.seen[string(p)]; ok && off%uint32(align) == 0 {
			return off
		}
	}
	for len(b.buf)%align != 0 {
		b.buf = append(b.buf, 0)
	}
	off := uint32(len(b.buf))
	b.buf = append(b.buf, p...)
	if cache {
		b.seen[string(p)] = off
	}
	return off
}

func (b *builder) blobVal(p []byte, cache bool) Val {
	var hdr []byte
	var t uint32
	align := 1
	switch n := len(p); {
	case n == 0:
		return 0
	case n <= 0xff:
		hdr, t = []byte{byte(n)}, typeBlob8
	case n <= 0xffff:
		hdr, t, align = binary.LittleEndian.AppendUint16(nil, uint16(n)), typeBlob16, 2
	default:
		hdr, t, align = binary.LittleEndian.AppendUint32(nil, uint32(n)), typeBlob32, 4
	}
	return Val(t | b.data(append(hdr, p...), align, cache))
}

// blob stores a byte string; the empty string is no value (apk-tools treats both alike).
func (b *builder) blob(p []byte) Val { return b.blobVal(p, true) }
func (b *builder) str(s string) Val  { return b.blob([]byte(s)) }

// integer stores v inline when it fits in 28 bits, else as 4 or 8 bytes aligned to 4.
func (b *builder) integer(v uint64) Val {
	switch {
	case v >= 1<<32:
		return Val(typeInt64 | b.data(binary.LittleEndian.AppendUint64(nil, v), 4, true))
	case v >= 0x10000000:
		return Val(typeInt32 | b.data(binary.LittleEndian.AppendUint32(nil, uint32(v)), 4, true))
	}
	return Val(typeInt | uint32(v))
}

// object stores fields (index i is field i; index 0 is ignored) with trailing empty fields left
// out; an object without fields is no value.
func (b *builder) object(fields []Val) Val { return b.compound(fields, typeObject) }

// array stores items in order.
func (b *builder) array(items []Val) Val {
	var nonNull []Val
	for _, v := range items {
		if v != 0 {
			nonNull = append(nonNull, v)
		}
	}
	return b.compound(append([]Val{0}, nonNull...), typeArray)
}

func (b *builder) compound(slots []Val, t uint32) Val {
	n := len(slots)
	for n > 1 && slots[n-1] == 0 {
		n--
	}
	if n <= 1 {
		return 0
	}
	raw := make([]byte, 4*n)
	binary.LittleEndian.PutUint32(raw, uint32(n))
	for i := 1; i < n; i++ {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(slots[i]))
	}
	return Val(t | b.data(raw, 4, true))
}

// finish sets the root and returns the block's bytes.
func (b *builder) finish(root Val) []byte {
	binary.LittleEndian.PutUint32(b.buf[4:], uint32(root))
	return b.buf
}

// appendBlock frames payload as a block of type t.
func appendBlock(out []byte, t uint32, payload []byte) []byte {
	if raw := uint64(4 + len(payload)); raw <= 0x3fffffff {
		out = binary.LittleEndian.AppendUint32(out, t<<30|uint32(raw))
	} else {
		out = binary.LittleEndian.AppendUint32(out, blockExt<<30|t)
		out = binary.LittleEndian.AppendUint32(out, 0)
		out = binary.LittleEndian.AppendUint64(out, uint64(16+len(payload)))
	}
	start := len(out)
	out = append(out, payload...)
	for (len(out)-start+4)%8 != 0 {
		out = append(out, 0)
	}
	return out
}

// header starts a container of the schema.
func header(schema uint32) []byte {
	out := binary.LittleEndian.AppendUint32(nil, magic)
	return binary.LittleEndian.AppendUint32(out, schema)
}

// GzipCommand, when set, is a gzip program whose deflate stream (gzip -9 -n, without gzip's
// header and trailer) replaces compress/flate's: GNU gzip also takes 3-byte matches, which makes
// the mipsel package about 1.5% smaller, as for the ipks. Either way the bytes depend on the
// input only.
var GzipCommand string

// compress writes the container as apk-tools' default compression does: "ADBd" and the
// container in raw deflate, best compression.
func compress(container []byte) ([]byte, error) {
	if GzipCommand != "" {
		return gzipDeflate(container)
	}
	var buf bytes.Buffer
	buf.WriteString("ADBd")
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(container); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gzipDeflate runs GzipCommand and keeps its raw deflate stream: a gzip -n member is a 10-byte
// header without optional fields, the deflate data, and an 8-byte trailer (CRC, size).
func gzipDeflate(container []byte) ([]byte, error) {
	cmd := exec.Command(GzipCommand, "-9", "-n", "-c")
	cmd.Stdin = bytes.NewReader(container)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -9 -n: %v: %s", GzipCommand, err, bytes.TrimSpace(errb.Bytes()))
	}
	z := out.Bytes()
	if len(z) < 18 || z[0] != 0x1f || z[1] != 0x8b || z[2] != 8 || z[3] != 0 {
		return nil, fmt.Errorf("%s -9 -n: output is not a plain gzip member", GzipCommand)
	}
	return append([]byte("ADBd"), z[10:len(z)-8]...), nil
}

// maxContainer bounds what decompress inflates, so a small hostile file cannot fill memory.
const maxContainer = 1 << 30

// decompress undoes compress; "ADB." containers are returned as they are.
func decompress(file []byte) ([]byte, error) {
	if len(file) < 4 || string(file[:3]) != "ADB" {
		return nil, errors.New("apk: not an ADB file (no ADB magic)")
	}
	switch file[3] {
	case '.':
		return file, nil
	case 'd':
		file = file[4:]
	case 'c':
		if len(file) < 6 {
			return nil, errors.New("apk: ADBc header truncated")
		}
		if alg := file[4]; alg != 1 {
			return nil, fmt.Errorf("apk: compression algorithm %d is not supported (only deflate, 1)", alg)
		}
		file = file[6:]
	default:
		return nil, fmt.Errorf("apk: unknown ADB compression %q", file[3])
	}
	zr := flate.NewReader(bytes.NewReader(file))
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxContainer+1))
	if err != nil {
		return nil, fmt.Errorf("apk: inflate: %w", err)
	}
	if len(out) > maxContainer {
		return nil, errors.New("apk: container larger than 1 GiB")
	}
	return out, nil
}
