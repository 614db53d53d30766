package gojajson

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// Parse decodes JSON bytes (a server message) into a JS value of rt.
//
// It accepts and rejects what goja's JSON.parse does and builds the same
// values, with two deliberate differences, both where goja departs from
// ECMAScript: a number beyond float64's range is ±Infinity (goja's
// encoding/json rejects it), and nesting deeper than MaxDepth is an error
// (goja allows 10000 levels; a bound here keeps a hostile message from
// costing deep recursion).
func Parse(rt *goja.Runtime, b []byte) (goja.Value, error) {
	return ParseString(rt, string(b))
}

// ParseString is Parse for text already held as a string.
func ParseString(rt *goja.Runtime, s string) (goja.Value, error) {
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

// MaxDepth bounds the nesting of arrays and objects, parsed and serialized.
const MaxDepth = 1000

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
	if depth > MaxDepth {
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
