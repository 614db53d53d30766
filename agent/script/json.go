package script

// Native JSON paths. goja's own JSON.parse goes through encoding/json's
// token stream and JSON.stringify through generic property access with
// many small allocations; profiling the benchmark workloads showed most of
// the JSON round trip spent there. These replacements parse straight into
// goja objects and serialize straight into a byte buffer, and the same
// code carries server messages in and out of the runtime without ever
// making an intermediate JS string.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// installJSON swaps JSON.parse/stringify for the native versions, keeping
// goja's originals for the forms we do not handle (reviver, replacer).
func (v *vm) installJSON() {
	rt := v.rt
	j := rt.Get("JSON").ToObject(rt)
	origParse, _ := goja.AssertFunction(j.Get("parse"))
	origStringify, _ := goja.AssertFunction(j.Get("stringify"))
	j.Set("parse", func(c goja.FunctionCall) goja.Value {
		if len(c.Arguments) > 1 && !goja.IsUndefined(c.Arguments[1]) {
			r, err := origParse(goja.Undefined(), c.Arguments...)
			if err != nil {
				panic(err)
			}
			return r
		}
		val, err := parseJSONString(rt, c.Argument(0).String())
		if err != nil {
			panic(rt.NewGoError(&syntaxError{err}))
		}
		return val
	})
	j.Set("stringify", func(c goja.FunctionCall) goja.Value {
		if len(c.Arguments) > 1 && !goja.IsUndefined(c.Arguments[1]) && !goja.IsNull(c.Arguments[1]) {
			r, err := origStringify(goja.Undefined(), c.Arguments...)
			if err != nil {
				panic(err)
			}
			return r
		}
		var indent string
		if len(c.Arguments) > 2 {
			sp := c.Arguments[2]
			if goja.IsNumber(sp) {
				n := min(max(int(sp.ToInteger()), 0), 10)
				indent = "          "[:n]
			} else if goja.IsString(sp) {
				indent = sp.String()
				if len(indent) > 10 {
					indent = indent[:10]
				}
			}
		}
		e := encoder{rt: rt, indent: indent}
		ok, err := e.value(c.Argument(0), 0)
		if err != nil {
			panic(rt.NewTypeError(err.Error()))
		}
		if !ok {
			return goja.Undefined()
		}
		return rt.ToValue(string(e.buf))
	})
}

type syntaxError struct{ err error }

func (e *syntaxError) Error() string { return "JSON.parse: " + e.err.Error() }

// parseJSON decodes server bytes into a JS value.
func parseJSON(rt *goja.Runtime, b []byte) (goja.Value, error) {
	return parseJSONString(rt, string(b))
}

func parseJSONString(rt *goja.Runtime, s string) (goja.Value, error) {
	p := parser{rt: rt, s: s}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, p.errf("unexpected data after value")
	}
	return v, nil
}

type parser struct {
	rt   *goja.Runtime
	s    string
	i    int
	keys map[string]string // interned keys: arrays of objects repeat them
}

const maxDepth = 1000

func (p *parser) errf(f string, a ...any) error {
	return fmt.Errorf("%s at offset %d", fmt.Sprintf(f, a...), p.i)
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (goja.Value, error) {
	if depth > maxDepth {
		return nil, p.errf("nesting too deep")
	}
	if p.i >= len(p.s) {
		return nil, p.errf("unexpected end of input")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return p.rt.ToValue(s), nil
	case c == 't':
		return p.lit("true", p.rt.ToValue(true))
	case c == 'f':
		return p.lit("false", p.rt.ToValue(false))
	case c == 'n':
		return p.lit("null", goja.Null())
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errf("unexpected character %q", c)
	}
}

func (p *parser) lit(word string, v goja.Value) (goja.Value, error) {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return nil, p.errf("invalid literal")
	}
	p.i += len(word)
	return v, nil
}

func (p *parser) number() (goja.Value, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	intStart := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i == intStart || (p.s[intStart] == '0' && p.i-intStart > 1) {
		return nil, p.errf("invalid number")
	}
	isInt := true
	if p.i < len(p.s) && p.s[p.i] == '.' {
		isInt = false
		p.i++
		d := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == d {
			return nil, p.errf("invalid number")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		isInt = false
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		d := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == d {
			return nil, p.errf("invalid number")
		}
	}
	txt := p.s[start:p.i]
	if isInt && len(txt) < 16 {
		n, err := strconv.ParseInt(txt, 10, 64)
		if err == nil && !(n == 0 && txt[0] == '-') { // keep -0 a float
			return p.rt.ToValue(n), nil
		}
	}
	f, err := strconv.ParseFloat(txt, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, p.errf("invalid number")
	}
	return p.rt.ToValue(f), nil
}

// str parses a JSON string; the fast path slices the input when there are
// no escapes.
func (p *parser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := p.s[start:p.i]
			p.i++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errf("control character in string")
		}
		p.i++
	}
	buf := []byte(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					r2, ok := p.hex4()
					if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
						r = d
					} else {
						p.i = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errf("invalid escape")
		}
	}
	return "", p.errf("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		c := p.s[p.i+k]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

func (p *parser) object(depth int) (goja.Value, error) {
	p.i++
	o := p.rt.NewObject()
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return o, nil
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.errf("expected string key")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if p.keys == nil {
			p.keys = make(map[string]string, 16)
		}
		if ik, ok := p.keys[k]; ok {
			k = ik
		} else if len(p.keys) < 4096 {
			k = string([]byte(k)) // detach from the source text
			p.keys[k] = k
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errf("expected ':'")
		}
		p.i++
		p.ws()
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if k == "__proto__" { // JSON.parse defines an own property, never sets the prototype
			_ = o.DefineDataProperty(k, val, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		} else if err := o.Set(k, val); err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.errf("unterminated object")
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.s[p.i] == '}' {
			p.i++
			return o, nil
		}
		return nil, p.errf("expected ',' or '}'")
	}
}

func (p *parser) array(depth int) (goja.Value, error) {
	p.i++
	var items []any
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return p.rt.NewArray(), nil
	}
	for {
		p.ws()
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, val)
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.errf("unterminated array")
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.s[p.i] == ']' {
			p.i++
			return p.rt.NewArray(items...), nil
		}
		return nil, p.errf("expected ',' or ']'")
	}
}

// encoder serializes JS values with JSON.stringify semantics (toJSON,
// skipped undefined/functions, null for non-finite numbers, cycle error).
type encoder struct {
	rt     *goja.Runtime
	buf    []byte
	indent string
	stack  []*goja.Object
}

// stringifyJSON serializes v for the wire.
func stringifyJSON(rt *goja.Runtime, v goja.Value, buf []byte) ([]byte, error) {
	e := encoder{rt: rt, buf: buf}
	ok, err := e.value(v, 0)
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

// value appends v; it reports false for values JSON omits (undefined,
// functions, symbols).
func (e *encoder) value(v goja.Value, depth int) (bool, error) {
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
	if toJSON, ok := goja.AssertFunction(o.Get("toJSON")); ok {
		r, err := toJSON(o)
		if err != nil {
			return false, err
		}
		if ro, ok := r.(*goja.Object); !ok || ro != o {
			return e.value(r, depth)
		}
	}
	if _, isFn := goja.AssertFunction(o); isFn {
		return false, nil
	}
	switch o.ClassName() {
	case "String", "Number", "Boolean":
		if vf, ok := goja.AssertFunction(o.Get("valueOf")); ok {
			if r, err := vf(o); err == nil {
				return e.primitive(r)
			}
		}
		return false, nil
	}
	for _, s := range e.stack {
		if s == o {
			return false, errors.New("Converting circular structure to JSON")
		}
	}
	if len(e.stack) > maxDepth {
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
			ok, err := e.value(o.Get(idxKey(i)), depth+1)
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
	e.buf = append(e.buf, '{')
	first := true
	for _, k := range o.Keys() {
		mark := len(e.buf)
		if !first {
			e.buf = append(e.buf, ',')
		}
		e.newline(depth + 1)
		e.buf = appendQuoted(e.buf, k)
		e.buf = append(e.buf, ':')
		if e.indent != "" {
			e.buf = append(e.buf, ' ')
		}
		ok, err := e.value(o.Get(k), depth+1)
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
		e.buf = appendQuoted(e.buf, x)
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

// appendQuoted writes s as a JSON string literal. Only what JSON requires
// is escaped (no HTML escaping), matching JSON.stringify.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
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
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONObject writes a flat object of string pairs; used for the few
// messages the host itself sends.
func appendJSONObject(b []byte, kv ...string) []byte {
	b = append(b, '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, kv[i])
		b = append(b, ':')
		b = appendQuoted(b, kv[i+1])
	}
	return append(b, '}')
}

// toJS converts Go results of native modules into plain JS values (real
// objects and arrays, not Go wrappers, so scripts can mutate and
// stringify them like any other).
func toJS(rt *goja.Runtime, x any) goja.Value {
	switch t := x.(type) {
	case nil:
		return goja.Null()
	case goja.Value:
		return t
	case map[string]any:
		o := rt.NewObject()
		for k, v := range t {
			_ = o.Set(k, toJS(rt, v))
		}
		return o
	case []any:
		items := make([]any, len(t))
		for i, v := range t {
			items[i] = toJS(rt, v)
		}
		return rt.NewArray(items...)
	case []string:
		items := make([]any, len(t))
		for i, v := range t {
			items[i] = v
		}
		return rt.NewArray(items...)
	case string, bool, int, int64, float64, uint64, int32, uint32:
		return rt.ToValue(t)
	case []byte: // pre-encoded JSON
		v, err := parseJSON(rt, t)
		if err != nil {
			return goja.Null()
		}
		return v
	}
	return rt.ToValue(x)
}
