package apk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Container is a parsed ADB file: its schema, the ADB block, the signature blocks and the data
// blocks in file order. Values are read from ADB with bounds checks; nothing here panics on
// hostile input.
type Container struct {
	Schema uint32
	ADB    []byte
	Sigs   [][]byte
	Data   []DataBlock
	Blocks []Block // every block in order, as `apk adbdump` lists them
}

// Block is one block's type and payload length.
type Block struct {
	Type uint32
	Len  uint64
}

// DataBlock is a file's content: the 1-based index of its directory in paths and of the file
// in that directory's files.
type DataBlock struct {
	Path, File uint32
	Data       []byte
}

// Read parses an ADB file, compressed or not. It checks the framing (magic, block sizes,
// padding within the file, one ADB block first, data blocks last) and the ADB header; values
// are checked when read.
func Read(file []byte) (*Container, error) {
	c, err := decompress(file)
	if err != nil {
		return nil, err
	}
	if len(c) < 8 || binary.LittleEndian.Uint32(c) != magic {
		return nil, errors.New("apk: container has no ADB. magic")
	}
	out := &Container{Schema: binary.LittleEndian.Uint32(c[4:])}
	rest := c[8:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, errors.New("apk: block header truncated")
		}
		w := binary.LittleEndian.Uint32(rest)
		t, hdr, raw := w>>30, uint64(4), uint64(w&0x3fffffff)
		if t == blockExt {
			if len(rest) < 16 {
				return nil, errors.New("apk: extended block header truncated")
			}
			t, hdr, raw = w&0x3fffffff, 16, binary.LittleEndian.Uint64(rest[8:])
		}
		size := (raw + 7) &^ 7
		if raw < hdr || raw > uint64(len(rest)) || size < raw {
			return nil, fmt.Errorf("apk: block of %d bytes with %d left in the file", raw, len(rest))
		}
		payload := rest[hdr:raw]
		if size > uint64(len(rest)) {
			// the padding of the last block may be missing from a stream that was cut short
			return nil, fmt.Errorf("apk: block padding runs past the end of the file")
		}
		rest = rest[size:]
		out.Blocks = append(out.Blocks, Block{Type: t, Len: uint64(len(payload))})
		switch {
		case t == blockADB && out.ADB == nil && len(out.Blocks) == 1:
			if len(payload) < 8 {
				return nil, errors.New("apk: ADB block shorter than its header")
			}
			if payload[0] != 0 {
				return nil, fmt.Errorf("apk: ADB compat version %d, want 0", payload[0])
			}
			out.ADB = payload
		case t == blockSig && out.ADB != nil && len(out.Data) == 0:
			out.Sigs = append(out.Sigs, payload)
		case t == blockData && out.ADB != nil:
			if len(payload) < 8 {
				return nil, errors.New("apk: data block shorter than its header")
			}
			out.Data = append(out.Data, DataBlock{
				Path: binary.LittleEndian.Uint32(payload),
				File: binary.LittleEndian.Uint32(payload[4:]),
				Data: payload[8:],
			})
		default:
			return nil, fmt.Errorf("apk: block type %d out of place (block %d)", t, len(out.Blocks))
		}
	}
	if out.ADB == nil {
		return nil, errors.New("apk: no ADB block")
	}
	return out, nil
}

// Root is the root value.
func (c *Container) Root() Val { return Val(binary.LittleEndian.Uint32(c.ADB[4:])) }

func (c *Container) at(v Val, n uint64) ([]byte, error) {
	off := uint64(v.value())
	if off+n > uint64(len(c.ADB)) {
		return nil, fmt.Errorf("apk: value %08x: %d bytes at offset %d run past the ADB block (%d bytes)", uint32(v), n, off, len(c.ADB))
	}
	return c.ADB[off : off+n], nil
}

// Int reads an integer value; no value reads as 0.
func (c *Container) Int(v Val) (uint64, error) {
	switch v.typ() {
	case typeSpecial:
		if v == 0 {
			return 0, nil
		}
	case typeInt:
		return uint64(v.value()), nil
	case typeInt32:
		b, err := c.at(v, 4)
		if err != nil {
			return 0, err
		}
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case typeInt64:
		b, err := c.at(v, 8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("apk: value %08x is not an integer", uint32(v))
}

// Blob reads a blob value; no value reads as nil.
func (c *Container) Blob(v Val) ([]byte, error) {
	var n uint64
	var hdr uint64
	switch v.typ() {
	case typeSpecial:
		if v == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("apk: value %08x is not a blob", uint32(v))
	case typeBlob8:
		b, err := c.at(v, 1)
		if err != nil {
			return nil, err
		}
		n, hdr = uint64(b[0]), 1
	case typeBlob16:
		b, err := c.at(v, 2)
		if err != nil {
			return nil, err
		}
		n, hdr = uint64(binary.LittleEndian.Uint16(b)), 2
	case typeBlob32:
		b, err := c.at(v, 4)
		if err != nil {
			return nil, err
		}
		n, hdr = uint64(binary.LittleEndian.Uint32(b)), 4
	default:
		return nil, fmt.Errorf("apk: value %08x is not a blob", uint32(v))
	}
	b, err := c.at(v, hdr+n)
	if err != nil {
		return nil, err
	}
	return b[hdr:], nil
}

// Obj reads an object or array: slot i of the result is field i (arrays: item i), slot 0 is
// unused. No value reads as an empty object.
func (c *Container) Obj(v Val) ([]Val, error) {
	if v == 0 {
		return []Val{0}, nil
	}
	if t := v.typ(); t != typeObject && t != typeArray {
		return nil, fmt.Errorf("apk: value %08x is not an object or array", uint32(v))
	}
	b, err := c.at(v, 4)
	if err != nil {
		return nil, err
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n == 0 {
		return nil, fmt.Errorf("apk: object %08x with 0 slots", uint32(v))
	}
	b, err = c.at(v, 4*n)
	if err != nil {
		return nil, err
	}
	out := make([]Val, n)
	for i := uint64(1); i < n; i++ {
		out[i] = Val(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// field is slot i of o, or no value.
func field(o []Val, i int) Val {
	if i < len(o) {
		return o[i]
	}
	return 0
}
