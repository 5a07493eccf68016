package jsonw

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decodable is a type that reads itself from one JSON value. Like encoding/json, it leaves
// itself as it is for null (a pointer or slice field is set to nil by its owner), and reads an
// object into what it already holds.
type Decodable interface {
	DecodeJSON(d *Decoder) error
}

// Unmarshal reads data, one JSON value and nothing after it but white space, into v.
func Unmarshal(data []byte, v Decodable) error {
	d := Decoder{data: data}
	if err := v.DecodeJSON(&d); err != nil {
		return err
	}
	d.space()
	if d.off < len(d.data) {
		return d.syntax("after the document")
	}
	return nil
}

// maxDepth is how deep objects and arrays may nest: encoding/json's limit.
const maxDepth = 10000

// Decoder reads JSON values in order from a document in memory. Each method reads one value
// (after white space) and fails on one of another type; null reads as no change.
type Decoder struct {
	data    []byte
	off     int
	depth   int
	scratch []byte // unescaped strings
	stack   []byte // Skip's open brackets
}

// Error is a document that did not read: where (the byte offset, and the member as a path like
// rows[3].day) and why.
type Error struct {
	Offset int
	Path   string
	Msg    string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg + " (at byte " + strconv.Itoa(e.Offset) + ")"
	}
	return e.Path + ": " + e.Msg + " (at byte " + strconv.Itoa(e.Offset) + ")"
}

// within puts err (from the value of member name, or of element i when name is "") under its
// parent in the path.
func within(err error, name string, i int) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	if name == "" {
		name = "[" + strconv.Itoa(i) + "]"
	}
	switch {
	case e.Path == "":
		e.Path = name
	case e.Path[0] == '[':
		e.Path = name + e.Path
	default:
		e.Path = name + "." + e.Path
	}
	return e
}

func (d *Decoder) errorf(off int, msg string) error {
	return &Error{Offset: off, Msg: msg}
}

// found says what is at the read offset, for errors.
func (d *Decoder) found() string {
	if d.off >= len(d.data) {
		return "the end of the document"
	}
	c := d.data[d.off]
	switch {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	}
	return strconv.QuoteRuneToASCII(rune(c))
}

// syntax is a syntax error at the read offset: what was wanted and what is there.
func (d *Decoder) syntax(where string) error {
	if d.off >= len(d.data) {
		return d.errorf(d.off, "unexpected end of the document "+where)
	}
	return d.errorf(d.off, "invalid character "+strconv.QuoteRuneToASCII(rune(d.data[d.off]))+" "+where)
}

// mismatch is a value of another type than want at the read offset. A value that is not valid
// JSON at all is reported as a syntax error.
func (d *Decoder) mismatch(want string) error {
	start := d.off
	if err := d.Skip(); err != nil {
		return err
	}
	d.off = start
	return d.errorf(start, "want "+want+", found "+d.found())
}

// space skips white space.
func (d *Decoder) space() {
	for d.off < len(d.data) {
		switch d.data[d.off] {
		case ' ', '\t', '\n', '\r':
			d.off++
		default:
			return
		}
	}
}

// peek is the next byte after white space; 0 at the end.
//
//go:noinline
func (d *Decoder) peek() byte {
	d.space()
	if d.off < len(d.data) {
		return d.data[d.off]
	}
	return 0
}

// literal reads the word lit (true, false, null) if it is next.
//
//go:noinline
func (d *Decoder) literal(lit string) bool {
	d.space()
	if len(d.data)-d.off >= len(lit) && string(d.data[d.off:d.off+len(lit)]) == lit {
		d.off += len(lit)
		return true
	}
	return false
}

// Null reads null if it is next, and says so.
//
//go:noinline
func (d *Decoder) Null() bool { return d.literal("null") }

// Object reads an object, calling member for each of its members with the member's name
// (valid only until the next read) and d positioned at its value, which member must read.
// null reads as an object without members (a struct stays as it is).
func (d *Decoder) Object(member func(name []byte) error) error {
	if d.Null() {
		return nil
	}
	if d.peek() != '{' {
		return d.mismatch("an object")
	}
	if err := d.open(); err != nil {
		return err
	}
	if d.closes('}') {
		return nil
	}
	for {
		name, raw, err := d.memberName()
		if err != nil {
			return err
		}
		if err := member(name); err != nil {
			return within(err, string(raw), 0)
		}
		if d.closes('}') {
			return nil
		}
		if d.peek() != ',' {
			return d.syntax("after a member's value")
		}
		d.off++
	}
}

// Array reads an array, calling elem for each element with its index and d positioned at the
// element, which elem must read. null reads as an array without elements.
func (d *Decoder) Array(elem func(i int) error) error {
	if d.Null() {
		return nil
	}
	if d.peek() != '[' {
		return d.mismatch("an array")
	}
	if err := d.open(); err != nil {
		return err
	}
	if d.closes(']') {
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return within(err, "", i)
		}
		if d.closes(']') {
			return nil
		}
		if d.peek() != ',' {
			return d.syntax("after an array element")
		}
		d.off++
	}
}

// closes tells whether the object or array ends here (end is '}' or ']'), and if so goes past
// it one level up.
func (d *Decoder) closes(end byte) bool {
	if d.peek() != end {
		return false
	}
	d.off++
	d.depth--
	return true
}

// open goes past '{' or '[' one level deeper.
func (d *Decoder) open() error {
	if d.depth >= maxDepth {
		return d.errorf(d.off, "nested too deep")
	}
	d.off++
	d.depth++
	return nil
}

// String reads a string into *p.
func (d *Decoder) String(p *string) error {
	if d.Null() {
		return nil
	}
	if d.peek() != '"' {
		return d.mismatch("a string")
	}
	s, err := d.str()
	if err != nil {
		return err
	}
	*p = string(s)
	return nil
}

// Bool reads true or false into *p.
func (d *Decoder) Bool(p *bool) error {
	switch {
	case d.Null():
	case d.literal("true"):
		*p = true
	case d.literal("false"):
		*p = false
	default:
		return d.mismatch("true or false")
	}
	return nil
}

// Uint reads a whole number from 0 to 2^64-1 into *p.
func (d *Decoder) Uint(p *uint64) error {
	if d.Null() {
		return nil
	}
	num, start, err := d.whole("an unsigned integer")
	if err != nil {
		return err
	}
	u, perr := strconv.ParseUint(num, 10, 64)
	if perr != nil {
		return d.errorf(start, "want an unsigned integer, found "+num)
	}
	*p = u
	return nil
}

// Int64 reads a whole number that fits an int64 into *p.
func (d *Decoder) Int64(p *int64) error {
	if d.Null() {
		return nil
	}
	i, err := d.signed(64)
	if err == nil {
		*p = i
	}
	return err
}

// Int reads a whole number that fits an int (32 bits on a 32-bit router) into *p.
func (d *Decoder) Int(p *int) error {
	if d.Null() {
		return nil
	}
	i, err := d.signed(strconv.IntSize)
	if err == nil {
		*p = int(i)
	}
	return err
}

// signed reads a whole number that fits bits.
func (d *Decoder) signed(bits int) (int64, error) {
	num, start, err := d.whole("an integer")
	if err != nil {
		return 0, err
	}
	i, perr := strconv.ParseInt(num, 10, bits)
	if perr != nil {
		return 0, d.errorf(start, "want an integer, found "+num)
	}
	return i, nil
}

// whole reads a number's text, and where it began, for the integer readers; want names the
// type in the error when the value is not a number.
func (d *Decoder) whole(want string) (string, int, error) {
	if !d.isNumber() {
		return "", 0, d.mismatch(want)
	}
	start := d.off
	num, err := d.number()
	return string(num), start, err
}

// Time reads a time as time.Time's UnmarshalJSON does (a quoted RFC 3339 time; null is no
// change).
func (d *Decoder) Time(p *time.Time) error {
	start := d.off
	raw, err := d.Raw()
	if err != nil {
		return err
	}
	if err := p.UnmarshalJSON(raw); err != nil {
		return d.errorf(start, err.Error())
	}
	return nil
}

// Strings reads an array of strings into *p (null: nil).
func (d *Decoder) Strings(p *[]string) error {
	return DecodeSlice(d, p, func(s *string, d *Decoder) error { return d.String(s) })
}

// Raw reads any value and returns its text.
func (d *Decoder) Raw() ([]byte, error) {
	d.space()
	start := d.off
	if err := d.Skip(); err != nil {
		return nil, err
	}
	return d.data[start:d.off], nil
}

// DecodeSlice reads an array into *p with elem for each element (a method expression:
// (*T).DecodeJSON), or null as nil. Like
// encoding/json it reuses *p's array: elements are read into what is there, and an empty
// array gives an empty slice that is not nil.
func DecodeSlice[T any](d *Decoder, p *[]T, elem func(v *T, d *Decoder) error) error {
	if d.Null() {
		*p = nil
		return nil
	}
	s := *p
	n := 0
	err := d.Array(func(i int) error {
		if i >= len(s) {
			if i < cap(s) {
				s = s[:i+1]
			} else {
				var zero T
				s = append(s, zero)
			}
		}
		n = i + 1
		return elem(&s[i], d)
	})
	if err != nil {
		return err
	}
	if n < len(s) {
		s = s[:n]
	}
	if n == 0 {
		s = []T{}
	}
	*p = s
	return nil
}

// DecodeMap reads an object into *p (made when nil) with elem for each value, each read into
// a zero V; null sets *p to nil. Entries already in *p stay, as in encoding/json.
func DecodeMap[V any](d *Decoder, p *map[string]V, elem func(v *V, d *Decoder) error) error {
	if d.Null() {
		*p = nil
		return nil
	}
	if d.peek() != '{' {
		return d.mismatch("an object")
	}
	if *p == nil {
		*p = map[string]V{}
	}
	m := *p
	return d.Object(func(name []byte) error {
		k := string(name)
		var v V
		if err := elem(&v, d); err != nil {
			return err
		}
		m[k] = v
		return nil
	})
}

// Fields are the member names of an object type, in the order of its struct's fields.
type Fields []string

// Name is the field a member's name stands for, matched as encoding/json matches it: exactly,
// else ignoring case (Unicode simple folding); "" for an unknown member.
func (f Fields) Name(name []byte) string {
	for _, n := range f {
		if string(name) == n {
			return n
		}
	}
	for _, n := range f {
		if bytes.EqualFold(name, []byte(n)) {
			return n
		}
	}
	return ""
}

// Skip reads any value, checking that it is valid JSON.
func (d *Decoder) Skip() error {
	base := len(d.stack)
	defer func() {
		d.depth -= len(d.stack) - base
		d.stack = d.stack[:base]
	}()
	for {
		// a value
		switch d.peek() {
		case '{', '[':
			c := d.data[d.off]
			if err := d.open(); err != nil {
				return err
			}
			if d.closes(c + 2) { // '}' or ']'
				break
			}
			d.stack = append(d.stack, c+2)
			if c == '{' {
				if _, _, err := d.memberName(); err != nil {
					return err
				}
			}
			continue
		case '"':
			if _, err := d.str(); err != nil {
				return err
			}
		case 't':
			if !d.literal("true") {
				return d.syntax("in literal true")
			}
		case 'f':
			if !d.literal("false") {
				return d.syntax("in literal false")
			}
		case 'n':
			if !d.literal("null") {
				return d.syntax("in literal null")
			}
		default:
			if !d.isNumber() {
				return d.syntax("looking for a value")
			}
			if _, err := d.number(); err != nil {
				return err
			}
		}
		// after a value: close what ends here, then the next member or element
		for {
			if len(d.stack) == base {
				return nil
			}
			end := d.stack[len(d.stack)-1]
			if d.closes(end) {
				d.stack = d.stack[:len(d.stack)-1]
				continue
			}
			if d.peek() != ',' {
				if end == '}' {
					return d.syntax("after a member's value")
				}
				return d.syntax("after an array element")
			}
			d.off++
			if end == '}' {
				if _, _, err := d.memberName(); err != nil {
					return err
				}
			}
			break
		}
	}
}

// memberName reads a member's name and its colon: the name unescaped (valid until the next
// read) and as written between its quotes (for errors).
func (d *Decoder) memberName() (name, raw []byte, err error) {
	if d.peek() != '"' {
		return nil, nil, d.syntax("looking for the name of a member")
	}
	start := d.off
	if name, err = d.str(); err != nil {
		return nil, nil, err
	}
	raw = d.data[start+1 : d.off-1]
	if d.peek() != ':' {
		return nil, nil, d.syntax("after the name of a member")
	}
	d.off++
	return name, raw, nil
}

// isNumber says whether a number is next.
//
//go:noinline
func (d *Decoder) isNumber() bool {
	c := d.peek()
	return c == '-' || '0' <= c && c <= '9'
}

// number reads a number as JSON writes it (d at its first byte: isNumber) and returns its text.
func (d *Decoder) number() ([]byte, error) {
	start := d.off
	data := d.data
	i := d.off
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		d.off = i
		return nil, d.syntax("in a number")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			d.off = i
			return nil, d.syntax("after the decimal point of a number")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || data[i] < '0' || data[i] > '9' {
			d.off = i
			return nil, d.syntax("in the exponent of a number")
		}
		for i < len(data) && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	}
	d.off = i
	return data[start:i], nil
}

// str reads a string (d at its quote) and returns its text unescaped: a slice of the document
// when there is nothing to unescape, else of d.scratch (valid until the next read). Invalid
// UTF-8 and lone surrogates become U+FFFD, as in encoding/json.
func (d *Decoder) str() ([]byte, error) {
	data := d.data
	d.off++
	start := d.off
	i := start
	for {
		if i >= len(data) {
			d.off = i
			return nil, d.syntax("in a string")
		}
		c := data[i]
		if c == '"' {
			d.off = i + 1
			return data[start:i], nil
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	b := append(d.scratch[:0], data[start:i]...)
	for {
		if i >= len(data) {
			d.off = i
			return nil, d.syntax("in a string")
		}
		c := data[i]
		switch {
		case c == '"':
			d.off = i + 1
			d.scratch = b
			return b, nil
		case c < ' ':
			d.off = i
			return nil, d.syntax("in a string")
		case c < utf8.RuneSelf && c != '\\':
			b = append(b, c)
			i++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(data[i:])
			b = utf8.AppendRune(b, r) // RuneError for invalid UTF-8
			i += size
		default: // backslash
			if i+1 >= len(data) {
				d.off = i + 1
				return nil, d.syntax("in a string escape")
			}
			switch e := data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(data[i+2:])
				if r < 0 {
					d.off = i + 2
					for d.off < len(data) && d.off < i+6 && hex4ok(data[d.off]) {
						d.off++
					}
					return nil, d.syntax("in a \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					var r2 rune = -1
					if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
						r2 = hex4(data[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				d.off = i + 1
				return nil, d.syntax("in a string escape")
			}
			i += 2
		}
	}
}

func hex4ok(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hex4 is the value of the four hex digits starting b; -1 when they are not.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// DecodePtr reads into **p with dec: null sets *p to nil; otherwise *p, made when nil, is
// read into (as encoding/json does with a pointer field).
func DecodePtr[T any](d *Decoder, p **T, dec func(v *T, d *Decoder) error) error {
	if d.Null() {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = new(T)
	}
	return dec(*p, d)
}
