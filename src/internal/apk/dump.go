package apk

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// kind is how a field's value is read and shown.
type kind int

const (
	kString  kind = iota
	kMString      // multi-line string: always a "|" block
	kHex          // blob shown as hex
	kInt
	kOct
	kObject
	kArray
	kDep // dependency object shown as one string: name, or name<op>version
)

type schemaField struct {
	name string
	kind kind
	sub  *schema // kObject: its fields; kArray: item schema
}

// schema lists an object's fields by number (fields[i-1] is field i), or for an array its
// item in fields[0].
type schema struct{ fields []schemaField }

var (
	depSchema   = &schema{}
	depArr      = &schema{[]schemaField{{"", kDep, depSchema}}}
	strArr      = &schema{[]schemaField{{"", kString, nil}}}
	aclSchema   = &schema{[]schemaField{{"mode", kOct, nil}, {"user", kString, nil}, {"group", kString, nil}, {"xattrs", kArray, &schema{[]schemaField{{"", kHex, nil}}}}}}
	fileSchema  = &schema{[]schemaField{{"name", kString, nil}, {"acl", kObject, aclSchema}, {"size", kInt, nil}, {"mtime", kInt, nil}, {"hash", kHex, nil}, {"target", kHex, nil}}}
	dirSchema   = &schema{[]schemaField{{"name", kString, nil}, {"acl", kObject, aclSchema}, {"files", kArray, &schema{[]schemaField{{"", kObject, fileSchema}}}}}}
	infoSchema  = &schema{[]schemaField{{"name", kString, nil}, {"version", kString, nil}, {"hashes", kHex, nil}, {"description", kString, nil}, {"arch", kString, nil}, {"license", kString, nil}, {"origin", kString, nil}, {"maintainer", kString, nil}, {"url", kString, nil}, {"repo-commit", kHex, nil}, {"build-time", kInt, nil}, {"installed-size", kInt, nil}, {"file-size", kInt, nil}, {"provider-priority", kInt, nil}, {"depends", kArray, depArr}, {"provides", kArray, depArr}, {"replaces", kArray, depArr}, {"install-if", kArray, depArr}, {"recommends", kArray, depArr}, {"layer", kInt, nil}, {"tags", kArray, strArr}}}
	scriptsSch  = &schema{[]schemaField{{"trigger", kMString, nil}, {"pre-install", kMString, nil}, {"post-install", kMString, nil}, {"pre-deinstall", kMString, nil}, {"post-deinstall", kMString, nil}, {"pre-upgrade", kMString, nil}, {"post-upgrade", kMString, nil}}}
	packageSch  = &schema{[]schemaField{{"info", kObject, infoSchema}, {"paths", kArray, &schema{[]schemaField{{"", kObject, dirSchema}}}}, {"scripts", kObject, scriptsSch}, {"triggers", kArray, strArr}, {"replaces-priority", kInt, nil}}}
	indexSchema = &schema{[]schemaField{{"description", kString, nil}, {"packages", kArray, &schema{[]schemaField{{"", kObject, infoSchema}}}}, {"pkgname-spec", kString, nil}}}
)

// Dump renders c in the text form `apk adbdump` prints for a package or an index (its YAML
// output): the schema, a comment per block, the ADB block's fields in schema order. sigResult
// is what adbdump says after each signature ("OK", "UNTRUSTED signature", …), which depends on
// the keys it was given.
func Dump(c *Container, sigResult string) (string, error) {
	d := &dumper{c: c}
	fmt.Fprintf(&d.b, "#%%SCHEMA: %08X\n", c.Schema)
	sigs := 0
	for _, blk := range c.Blocks {
		switch blk.Type {
		case blockADB:
			fmt.Fprintf(&d.b, "# ADB block, size: %d, compat: %d, ver: %d\n", blk.Len, c.ADB[0], c.ADB[1])
			var s *schema
			switch c.Schema {
			case SchemaPackage:
				s = packageSch
			case SchemaIndex:
				s = indexSchema
			default:
				continue
			}
			o, err := c.Obj(c.Root())
			if err != nil {
				return "", err
			}
			if err := d.object(o, s, 0, ""); err != nil {
				return "", err
			}
		case blockSig:
			d.b.WriteString("# " + sigComment(c.Sigs[sigs], sigResult) + "\n")
			sigs++
		case blockData:
			fmt.Fprintf(&d.b, "# data block, size: %d\n", blk.Len)
		default:
			fmt.Fprintf(&d.b, "# unknown block %d, size: %d\n", blk.Type, blk.Len)
		}
	}
	return d.b.String(), nil
}

// sigComment is adbdump's line for a signature: version, hash algorithm, then as much of the
// key id and signature in hex as its 160-byte line buffer leaves room for.
func sigComment(sig []byte, result string) string {
	if len(sig) < 2 {
		return "sig (truncated): " + result
	}
	s := fmt.Sprintf("sig v%02x h%02x ", sig[0], sig[1])
	rest := sig[2:]
	if n := (160 - len(s) - 40 + 1) / 2; len(rest) > n {
		rest = rest[:n]
	}
	s += hex.EncodeToString(rest)
	if 160-len(s) <= 40 {
		s += ".."
	}
	return s + ": " + result
}

type dumper struct {
	c *Container
	b strings.Builder
}

func pad(indent int) string { return strings.Repeat("  ", indent) }

// maxDump bounds Dump's output: values shared by many slots are rendered at every use, so a
// small hostile file could otherwise ask for a huge text.
const maxDump = 64 << 20

// object writes the fields of o, each on its own line at indent; the first line starts with
// first instead of the indentation when first is set (an array item's "- ").
func (d *dumper) object(o []Val, s *schema, indent int, first string) error {
	if d.b.Len() > maxDump {
		return fmt.Errorf("apk: dump longer than %d bytes", maxDump)
	}
	wrote := false
	for i := 1; i < len(o); i++ {
		if o[i] == 0 || i > len(s.fields) {
			continue
		}
		f := s.fields[i-1]
		lead := pad(indent)
		if !wrote && first != "" {
			lead = first
		}
		wrote = true
		if err := d.value(lead+f.name+":", f, o[i], indent); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if !wrote {
		lead := pad(indent)
		if first != "" {
			lead = first
		}
		d.b.WriteString(lead + "# empty object\n")
	}
	return nil
}

// value writes one field after its key line head ("  name:"), at indent.
func (d *dumper) value(head string, f schemaField, v Val, indent int) error {
	switch f.kind {
	case kObject:
		o, err := d.c.Obj(v)
		if err != nil {
			return err
		}
		d.b.WriteString(head + "\n")
		return d.object(o, f.sub, indent+1, "")
	case kArray:
		a, err := d.c.Obj(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&d.b, "%s # %d items\n", head, len(a)-1)
		item := f.sub.fields[0]
		for _, iv := range a[1:] {
			if iv == 0 {
				continue
			}
			lead := pad(indent+1) + "- "
			if item.kind == kObject {
				o, err := d.c.Obj(iv)
				if err != nil {
					return err
				}
				if err := d.object(o, item.sub, indent+2, lead); err != nil {
					return err
				}
				continue
			}
			s, ml, err := d.scalar(item, iv)
			if err != nil {
				return err
			}
			d.text(strings.TrimSuffix(lead, " "), s, ml, indent+1)
		}
		return nil
	}
	s, ml, err := d.scalar(f, v)
	if err != nil {
		return err
	}
	d.text(head, s, ml, indent)
	return nil
}

// scalar is a value's text and whether it is always shown as a block.
func (d *dumper) scalar(f schemaField, v Val) (string, bool, error) {
	switch f.kind {
	case kInt, kOct:
		n, err := d.c.Int(v)
		if err != nil {
			return "", false, err
		}
		if f.kind == kOct && n != 0 {
			return "0" + strconv.FormatUint(n, 8), false, nil
		}
		return strconv.FormatUint(n, 10), false, nil
	case kHex:
		b, err := d.c.Blob(v)
		if err != nil {
			return "", false, err
		}
		if 2*len(b) >= 256 {
			return fmt.Sprintf("(%d bytes)", len(b)), false, nil
		}
		return hex.EncodeToString(b), false, nil
	case kDep:
		o, err := d.c.Obj(v)
		if err != nil {
			return "", false, err
		}
		name, err := d.c.Blob(field(o, 1))
		if err != nil {
			return "", false, err
		}
		ver, err := d.c.Blob(field(o, 2))
		if err != nil {
			return "", false, err
		}
		op, err := d.c.Int(field(o, 3))
		if err != nil {
			return "", false, err
		}
		if op == 0 {
			op = 1
		}
		neg := ""
		if op&16 != 0 {
			neg = "!"
		}
		if ver == nil {
			return neg + string(name), false, nil
		}
		return neg + string(name) + versionOp(op&^16) + string(ver), false, nil
	}
	b, err := d.c.Blob(v)
	if err != nil {
		return "", false, err
	}
	return string(b), f.kind == kMString, nil
}

func versionOp(op uint64) string {
	switch op {
	case 2:
		return "<"
	case 3:
		return "<="
	case 11:
		return "<~"
	case 8, 9:
		return "~"
	case 1:
		return "="
	case 5:
		return ">="
	case 13:
		return ">~"
	case 4:
		return ">"
	case 6:
		return "><"
	}
	return "?"
}

// text writes head and a string the way adbdump's YAML quotes it: plain, in single quotes
// (it starts with a YAML indicator or holds ": " or "#"), or as a "|" block (80 bytes or more,
// several lines, a single quote, " #", or a multi-line field).
func (d *dumper) text(head, s string, multiline bool, indent int) {
	switch quoting(s, multiline) {
	case quoteNone:
		d.b.WriteString(head + " " + s + "\n")
	case quoteSingle:
		d.b.WriteString(head + " '" + s + "'\n")
	default:
		d.b.WriteString(head + " |\n")
		for _, l := range strings.Split(s, "\n") {
			if l == "" {
				continue
			}
			d.b.WriteString(pad(indent+1) + l + "\n")
		}
	}
}

const (
	quoteNone = iota
	quoteSingle
	quoteBlock
)

func quoting(s string, multiline bool) int {
	if s == "" {
		return quoteNone
	}
	if len(s) >= 80 || multiline {
		return quoteBlock
	}
	style := quoteNone
	if strings.IndexByte("-?:,[]{}#&*!|>'\"%@`", s[0]) >= 0 {
		style = quoteSingle
	}
	prev := byte(0)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n', '\'':
			return quoteBlock
		case ' ':
			if prev == ':' {
				style = quoteSingle
			}
		case '#':
			if prev == ' ' {
				return quoteBlock
			}
			style = quoteSingle
		}
		prev = s[i]
	}
	return style
}
