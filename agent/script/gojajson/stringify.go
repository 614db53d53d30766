package gojajson

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// encoder serializes JS values with JSON.stringify semantics (toJSON,
// skipped undefined/functions, null for non-finite numbers, cycle error).
type encoder struct {
	rt     *goja.Runtime
	buf    []byte
	indent string
	stack  []*goja.Object

	bigIntProto *goja.Object // BigInt.prototype, looked up on first need
}

// isBigIntObject reports whether o is a BigInt wrapper (Object(10n)),
// which JSON.stringify refuses like the BigInt itself. goja gives such
// objects the class "Object", so the prototype tells them apart cheaply
// and Export confirms.
func (e *encoder) isBigIntObject(o *goja.Object) bool {
	p := o.Prototype()
	if p == nil || o.ClassName() != "Object" {
		return false
	}
	if e.bigIntProto == nil {
		bi := e.rt.Get("BigInt")
		if bi == nil || goja.IsUndefined(bi) {
			return false
		}
		e.bigIntProto = bi.ToObject(e.rt).Get("prototype").ToObject(e.rt)
	}
	if p != e.bigIntProto {
		return false
	}
	_, ok := o.Export().(*big.Int)
	return ok
}

// Stringify appends JSON.stringify(v) to buf (for the wire); a value JSON
// omits (undefined, a function, a symbol) is an error.
func Stringify(rt *goja.Runtime, v goja.Value, buf []byte) ([]byte, error) {
	e := encoder{rt: rt, buf: buf}
	ok, err := e.value("", v, 0)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("value is not serializable")
	}
	return e.buf, nil
}

var indexKeys = func() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

func idxKey(i int) string {
	if i < len(indexKeys) {
		return indexKeys[i]
	}
	return strconv.Itoa(i)
}

func (e *encoder) newline(depth int) {
	if e.indent == "" {
		return
	}
	e.buf = append(e.buf, '\n')
	for k := 0; k < depth; k++ {
		e.buf = append(e.buf, e.indent...)
	}
}

// value appends v, the property key of its holder ("" at the top); it
// reports false for values JSON omits (undefined, functions, symbols).
// As in SerializeJSONProperty, toJSON is called once, with the key, and
// what it returns is serialized as it is (a Date returned by toJSON is an
// object with no own properties, not its ISO string).
func (e *encoder) value(key string, v goja.Value, depth int) (bool, error) {
	if o, isObj := v.(*goja.Object); isObj {
		if toJSON, ok := goja.AssertFunction(o.Get("toJSON")); ok {
			r, err := toJSON(o, e.rt.ToValue(key))
			if err != nil {
				return false, err
			}
			v = r
		}
	}
	if v == nil || goja.IsUndefined(v) {
		return false, nil
	}
	if goja.IsNull(v) {
		e.buf = append(e.buf, "null"...)
		return true, nil
	}
	if _, isSym := v.(*goja.Symbol); isSym {
		return false, nil
	}
	o, isObj := v.(*goja.Object)
	if !isObj {
		return e.primitive(v)
	}
	if _, isFn := goja.AssertFunction(o); isFn {
		return false, nil
	}
	if e.isBigIntObject(o) {
		return false, errors.New("Do not know how to serialize a BigInt")
	}
	switch o.ClassName() {
	case "String", "Number", "Boolean":
		if vf, ok := goja.AssertFunction(o.Get("valueOf")); ok {
			r, err := vf(o)
			if err != nil {
				return false, err
			}
			return e.primitive(r)
		}
		return false, nil
	}
	for _, s := range e.stack {
		if s == o {
			return false, errors.New("Converting circular structure to JSON")
		}
	}
	if len(e.stack) > MaxDepth {
		return false, errors.New("JSON nesting too deep")
	}
	e.stack = append(e.stack, o)
	defer func() { e.stack = e.stack[:len(e.stack)-1] }()
	if o.ClassName() == "Array" {
		n := int(o.Get("length").ToInteger())
		e.buf = append(e.buf, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.newline(depth + 1)
			ok, err := e.value(idxKey(i), o.Get(idxKey(i)), depth+1)
			if err != nil {
				return false, err
			}
			if !ok {
				e.buf = append(e.buf, "null"...)
			}
		}
		if n > 0 {
			e.newline(depth)
		}
		e.buf = append(e.buf, ']')
		return true, nil
	}
	keys := o.Keys()
	for _, k := range keys {
		if strings.Contains(k, "\uFFFD") {
			return e.objectUTF16(o, depth)
		}
	}
	e.buf = append(e.buf, '{')
	first := true
	for _, k := range keys {
		mark := len(e.buf)
		if !first {
			e.buf = append(e.buf, ',')
		}
		e.newline(depth + 1)
		e.buf = AppendQuoted(e.buf, k)
		e.buf = append(e.buf, ':')
		if e.indent != "" {
			e.buf = append(e.buf, ' ')
		}
		ok, err := e.value(k, o.Get(k), depth+1)
		if err != nil {
			return false, err
		}
		if !ok {
			e.buf = e.buf[:mark]
			continue
		}
		first = false
	}
	if !first {
		e.newline(depth)
	}
	e.buf = append(e.buf, '}')
	return true, nil
}

// objectUTF16 is the object case of value for an object with a key that
// Keys could not give exactly (a lone surrogate decodes to U+FFFD, and
// Get by that name misses the property): keys and values come through
// Object.keys and Reflect.get as JS strings. Rare, so slow is fine.
func (e *encoder) objectUTF16(o *goja.Object, depth int) (bool, error) {
	keysFn, ok1 := goja.AssertFunction(e.rt.Get("Object").ToObject(e.rt).Get("keys"))
	getFn, ok2 := goja.AssertFunction(e.rt.Get("Reflect").ToObject(e.rt).Get("get"))
	if !ok1 || !ok2 {
		return false, errors.New("Object.keys or Reflect.get is missing")
	}
	kv, err := keysFn(goja.Undefined(), o)
	if err != nil {
		return false, err
	}
	ka := kv.ToObject(e.rt)
	n := int(ka.Get("length").ToInteger())
	e.buf = append(e.buf, '{')
	first := true
	for i := 0; i < n; i++ {
		k := ka.Get(idxKey(i))
		ks, isStr := k.(goja.String)
		if !isStr {
			continue
		}
		v, err := getFn(goja.Undefined(), o, k)
		if err != nil {
			return false, err
		}
		mark := len(e.buf)
		if !first {
			e.buf = append(e.buf, ',')
		}
		e.newline(depth + 1)
		e.buf = appendQuotedUTF16(e.buf, ks)
		e.buf = append(e.buf, ':')
		if e.indent != "" {
			e.buf = append(e.buf, ' ')
		}
		ok, err := e.value(k.String(), v, depth+1)
		if err != nil {
			return false, err
		}
		if !ok {
			e.buf = e.buf[:mark]
			continue
		}
		first = false
	}
	if !first {
		e.newline(depth)
	}
	e.buf = append(e.buf, '}')
	return true, nil
}

func (e *encoder) primitive(v goja.Value) (bool, error) {
	switch x := v.Export().(type) {
	case string:
		if js, ok := v.(goja.String); ok && strings.Contains(x, "\uFFFD") {
			// Export decodes lone surrogates to U+FFFD; JSON.stringify
			// escapes them (well-formed JSON.stringify), so write this one
			// from its UTF-16 code units.
			e.buf = appendQuotedUTF16(e.buf, js)
		} else {
			e.buf = AppendQuoted(e.buf, x)
		}
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			e.buf = append(e.buf, "null"...)
		} else {
			e.buf = append(e.buf, v.String()...) // JS number formatting
		}
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case nil:
		return false, nil
	default:
		if goja.IsBigInt(v) {
			return false, errors.New("Do not know how to serialize a BigInt")
		}
		return false, nil // symbols
	}
	return true, nil
}

const hexDigits = "0123456789abcdef"

// AppendQuoted appends s as a JSON string literal. Only what JSON requires
// is escaped (no HTML escaping), matching JSON.stringify.
func AppendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			// A Go string from goja (an imported one keeps its bytes) may
			// hold invalid UTF-8; to JS each bad byte is U+FFFD, and so it
			// is written here.
			if r, n := utf8.DecodeRuneInString(s[i:]); r == utf8.RuneError && n == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\uFFFD"...)
				start = i + 1
			} else {
				i += n - 1
			}
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		b = appendEscape(b, c)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the JSON escape of c, one of '"', '\\' or a
// control character.
func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"':
		b = append(b, '\\', '"')
	case '\\':
		b = append(b, '\\', '\\')
	case '\n':
		b = append(b, '\\', 'n')
	case '\r':
		b = append(b, '\\', 'r')
	case '\t':
		b = append(b, '\\', 't')
	case '\b':
		b = append(b, '\\', 'b')
	case '\f':
		b = append(b, '\\', 'f')
	default:
		b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
	}
	return b
}

// appendQuotedUTF16 is AppendQuoted from s's code units: a surrogate pair
// is one character, a lone surrogate a \u escape.
func appendQuotedUTF16(b []byte, s goja.String) []byte {
	b = append(b, '"')
	n := s.Length()
	for i := 0; i < n; i++ {
		c := rune(s.CharAt(i))
		switch {
		case c < 0x20 || c == '"' || c == '\\':
			b = appendEscape(b, byte(c))
		case c < utf8.RuneSelf:
			b = append(b, byte(c))
		case utf16.IsSurrogate(c):
			if c < 0xDC00 && i+1 < n {
				if d := utf16.DecodeRune(c, rune(s.CharAt(i+1))); d != utf8.RuneError {
					b = utf8.AppendRune(b, d)
					i++
					continue
				}
			}
			b = append(b, '\\', 'u', hexDigits[c>>12], hexDigits[c>>8&0xF], hexDigits[c>>4&0xF], hexDigits[c&0xF])
		default:
			b = utf8.AppendRune(b, c)
		}
	}
	return append(b, '"')
}

// AppendObject appends a flat object of string pairs (key, value, key,
// value...); used for the few messages the host itself sends.
func AppendObject(b []byte, kv ...string) []byte {
	b = append(b, '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendQuoted(b, kv[i])
		b = append(b, ':')
		b = AppendQuoted(b, kv[i+1])
	}
	return append(b, '}')
}
