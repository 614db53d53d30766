package gojajson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// The fuzz targets check the codec against goja's own JSON as the oracle:
// the same input must be accepted or rejected by both, and what is
// accepted must build deep-equal values that serialize to the same text.

// call runs rt's JSON[fn](args...) and turns a thrown exception into an error.
func call(rt *goja.Runtime, fn string, args ...goja.Value) (v goja.Value, err error) {
	f, ok := goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get(fn))
	if !ok {
		return nil, fmt.Errorf("JSON.%s is not a function", fn)
	}
	return f(goja.Undefined(), args...)
}

// deepEqual reports where a and b (from two runtimes) differ, "" when they
// are the same JS value: same class, same own keys in the same order,
// numbers compared with SameValue (so -0 and 0 differ).
func deepEqual(path string, a, b goja.Value) string {
	ao, aObj := a.(*goja.Object)
	bo, bObj := b.(*goja.Object)
	if aObj != bObj {
		return fmt.Sprintf("%s: object %v vs %v", path, a, b)
	}
	if !aObj {
		if goja.IsNumber(a) && goja.IsNumber(b) {
			x, y := a.ToFloat(), b.ToFloat()
			if math.Float64bits(x) != math.Float64bits(y) {
				return fmt.Sprintf("%s: number %v vs %v", path, x, y)
			}
			return ""
		}
		if goja.IsUndefined(a) != goja.IsUndefined(b) || goja.IsNull(a) != goja.IsNull(b) || !a.StrictEquals(b) {
			return fmt.Sprintf("%s: %#v vs %#v", path, a.Export(), b.Export())
		}
		return ""
	}
	if ao.ClassName() != bo.ClassName() {
		return fmt.Sprintf("%s: class %s vs %s", path, ao.ClassName(), bo.ClassName())
	}
	ak, bk := ao.Keys(), bo.Keys()
	if strings.Join(ak, "\x00") != strings.Join(bk, "\x00") {
		return fmt.Sprintf("%s: keys %q vs %q", path, ak, bk)
	}
	if ao.ClassName() == "Array" {
		if n, m := ao.Get("length").ToInteger(), bo.Get("length").ToInteger(); n != m {
			return fmt.Sprintf("%s: length %d vs %d", path, n, m)
		}
	}
	for _, k := range ak {
		if d := deepEqual(path+"."+k, ao.Get(k), bo.Get(k)); d != "" {
			return d
		}
	}
	return ""
}

// hasInfinity reports whether a parsed value holds ±Infinity anywhere.
func hasInfinity(v goja.Value) bool {
	if o, ok := v.(*goja.Object); ok {
		for _, k := range o.Keys() {
			if hasInfinity(o.Get(k)) {
				return true
			}
		}
		return false
	}
	return goja.IsNumber(v) && math.IsInf(v.ToFloat(), 0)
}

// parseSeeds are inputs each branch of the parser should see.
var parseSeeds = []string{
	`{"action":"msg","type":"console","value":"help","rights":4294967295,"sessionid":"user/domain/admin/abcdef"}`,
	`[1,2.5,-3,1e3,-0,0.1e-2,9007199254740993,123456789012345678901234567890]`,
	`"x\u0041\n\ud83d\ude00 \ud800 \udc00x \ud800\u0041 \\ \/ \b\f\r\t"`,
	`{"__proto__":{"x":1},"a":1,"a":2,"2":"b","1":"a"}`,
	` [ true , false , null , { } , [ ] ] `,
	`{`, `[1,]`, `{"a":1,}`, `01`, "\"\t\"", `tru`, `1 2`, ``, `"\x"`, `1e400`, `-`, `1.`, `.5`, `+1`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, "\"\xff\xfe\"", `{"a" 1}`, `[1 2]`, `nul`, `"\u12"`,
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	stock, native := goja.New(), nativeRuntime()
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := call(stock, "parse", stock.ToValue(string(data)))
		got, gotErr := call(native, "parse", native.ToValue(string(data)))
		wire, wireErr := Parse(native, data)
		if (gotErr == nil) != (wireErr == nil) {
			t.Fatalf("JSON.parse error %v, Parse error %v", gotErr, wireErr)
		}
		switch {
		case wantErr != nil && gotErr != nil:
			var a, b *goja.Exception
			if !errors.As(wantErr, &a) || !errors.As(gotErr, &b) || errName(a) != errName(b) {
				t.Fatalf("goja throws %v, codec %v", wantErr, gotErr)
			}
			return
		case wantErr != nil && strings.Contains(wantErr.Error(), "cannot unmarshal number") && hasInfinity(got):
			return // deliberate: a number beyond float64 is Infinity here, as ECMAScript says
		case wantErr == nil && gotErr != nil && strings.Contains(gotErr.Error(), "nesting too deep"):
			return // deliberate: MaxDepth
		case (wantErr == nil) != (gotErr == nil):
			t.Fatalf("goja error %v, codec error %v", wantErr, gotErr)
		}
		if d := deepEqual("$", want, got); d != "" {
			t.Fatalf("JSON.parse differs: %s", d)
		}
		if d := deepEqual("$", want, wire); d != "" {
			t.Fatalf("Parse differs: %s", d)
		}
		// Round trip: both stringify what they parsed to the same text.
		for _, indent := range []goja.Value{nil, stock.ToValue(2)} {
			args := func(rt *goja.Runtime, v goja.Value) []goja.Value {
				if indent == nil {
					return []goja.Value{v}
				}
				return []goja.Value{v, goja.Null(), rt.ToValue(indent.Export())}
			}
			ws, err1 := call(stock, "stringify", args(stock, want)...)
			gs, err2 := call(native, "stringify", args(native, got)...)
			if err1 != nil || err2 != nil {
				t.Fatalf("stringify errors: goja %v, codec %v", err1, err2)
			}
			if !ws.StrictEquals(gs) {
				t.Fatalf("stringify differs:\ngoja  %q\ncodec %q", ws, gs)
			}
		}
		b, err := Stringify(native, wire, nil)
		if err != nil {
			t.Fatalf("Stringify: %v", err)
		}
		ws, _ := call(stock, "stringify", want)
		if ws.String() != string(b) {
			t.Fatalf("Stringify differs:\ngoja  %q\ncodec %q", ws, b)
		}
	})
}

// jsExpr turns fuzz bytes into a JS expression over the values
// JSON.stringify treats specially (undefined, functions, symbols, NaN,
// -0, wrappers, toJSON, Dates, sparse arrays, lone surrogates, BigInt).
type jsExpr struct {
	b []byte
	i int
}

func (g *jsExpr) next() byte {
	if g.i >= len(g.b) {
		return 0
	}
	c := g.b[g.i]
	g.i++
	return c
}

func (g *jsExpr) str() string {
	n := int(g.next() % 6)
	var sb strings.Builder
	sb.WriteByte('\'')
	for k := 0; k < n; k++ {
		c := g.next()
		switch c % 4 {
		case 0:
			fmt.Fprintf(&sb, "\\u%04x", uint16(c)<<8|uint16(g.next())) // any code unit, surrogates too
		case 1:
			fmt.Fprintf(&sb, "\\u%04x", c&0x3f) // controls, quotes, backslash
		default:
			sb.WriteByte("abz09_-"[int(c)%7])
		}
	}
	sb.WriteByte('\'')
	return sb.String()
}

func (g *jsExpr) expr(depth int) string {
	c := g.next()
	if depth > 6 {
		c %= 12 // leaves only (cases 0-11), so nesting stays far below MaxDepth
	}
	switch c % 24 {
	case 0:
		return "null"
	case 1:
		return "undefined"
	case 2:
		return "true"
	case 3:
		return "false"
	case 4:
		return strconv.Itoa(int(int8(g.next())))
	case 5:
		return strconv.FormatFloat(math.Float64frombits(uint64(g.next())<<56|uint64(g.next())<<48|uint64(g.next())<<8), 'g', -1, 64)
	case 6:
		return []string{"NaN", "Infinity", "-Infinity", "-0", "1e21", "1e-7", "0.1", "2**53+2"}[g.next()%8]
	case 7, 8:
		return g.str()
	case 9:
		return "function(){}"
	case 10:
		return "Symbol('s')"
	case 11:
		return "new Date(" + strconv.Itoa(int(int16(uint16(g.next())<<8|uint16(g.next())))*1e6) + ")"
	case 12:
		return []string{"new String(", "new Number(", "new Boolean(", "Object("}[g.next()%4] + g.expr(depth+1) + ")"
	case 13:
		return "10n"
	case 14:
		return "(function(){var a=[]; a[" + strconv.Itoa(int(g.next()%5)) + "]=" + g.expr(depth+1) + "; return a})()"
	case 15:
		return "''"
	case 16, 17, 18:
		n := int(g.next() % 5)
		parts := make([]string, n)
		for k := range parts {
			parts[k] = g.expr(depth + 1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case 19, 20, 21:
		n := int(g.next() % 5)
		parts := make([]string, n)
		for k := range parts {
			key := g.str()
			if g.next()%3 == 0 {
				key = strconv.Itoa(int(g.next() % 12)) // index-like keys order first
			}
			parts[k] = key + ":" + g.expr(depth+1)
		}
		return "({" + strings.Join(parts, ",") + "})"
	case 22:
		return "({toJSON: function(k){ return " + g.expr(depth+1) + "; }})"
	default:
		return "({toJSON: 1, x: " + g.expr(depth+1) + "})"
	}
}

func FuzzStringify(f *testing.F) {
	f.Add([]byte{16, 4, 0, 1, 9, 10, 6, 0, 6, 3}, uint8(0))
	f.Add([]byte{19, 3, 7, 3, 0, 0xd8, 1, 0x22, 2, 'a', 6, 1}, uint8(2))
	f.Add([]byte{22, 11, 0x12, 0x34}, uint8(13))
	f.Add([]byte{12, 0, 7, 2, 3, 4}, uint8(20))
	stock, native := goja.New(), nativeRuntime()
	f.Fuzz(func(t *testing.T, prog []byte, space uint8) {
		g := jsExpr{b: prog}
		src := g.expr(0)
		// space: 0 none, 1..11 a number (11 is clamped to 10), above a string.
		spaceArg, gap := "undefined", ""
		switch {
		case space >= 1 && space <= 11:
			spaceArg = strconv.Itoa(int(space) - 1)
			gap = strings.Repeat(" ", min(int(space)-1, 10))
		case space > 11:
			spaceArg = strconv.Quote(strings.Repeat("-", int(space-11)%14))
			gap = strings.Repeat("-", min(int(space-11)%14, 10))
		}
		if strings.Contains(src, "Object(Symbol(") {
			// goja omits a Symbol wrapper object like a symbol; ECMAScript
			// (and V8) serialize it as the empty object it is, as this
			// codec does. The oracle is wrong there: skip that input.
			t.Skip("goja serializes Object(Symbol()) wrongly")
		}
		code := "JSON.stringify(" + src + ", null, " + spaceArg + ")"
		want, wantErr := stock.RunString(code)
		got, gotErr := native.RunString(code)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%s: goja error %v, codec error %v", code, wantErr, gotErr)
		}
		if wantErr != nil {
			var a, b *goja.Exception
			if errors.As(wantErr, &a) && errors.As(gotErr, &b) {
				if an, bn := errName(a), errName(b); an != bn {
					t.Fatalf("%s: goja throws %s (%v), codec %s (%v)", code, an, wantErr, bn, gotErr)
				}
			}
			return
		}
		if !want.SameAs(got) && gap != "" && goja.IsString(want) {
			// goja leaves its indent one level too deep after an empty
			// array or object ([] or {}) when a gap is given; ECMAScript
			// (and V8) restore it, as this codec does. For that case only
			// the layout comes from encoding/json's Indent over goja's
			// compact output, whose layout rules are ECMAScript's.
			compact, err := stock.RunString("JSON.stringify(" + src + ")")
			if err != nil {
				t.Fatalf("%s: goja fails without a gap: %v", src, err)
			}
			var b bytes.Buffer
			if err := json.Indent(&b, []byte(compact.String()), "", gap); err != nil {
				t.Fatalf("%s: goja's output is not JSON: %v", src, err)
			}
			want = stock.ToValue(b.String())
		}
		if !want.SameAs(got) {
			t.Fatalf("%s:\ngoja  %q\ncodec %q", code, want, got)
		}
	})
}

// errName is the class of a thrown error (TypeError, SyntaxError...).
func errName(e *goja.Exception) string {
	if o, ok := e.Value().(*goja.Object); ok {
		return o.Get("name").String()
	}
	return e.Value().String()
}
