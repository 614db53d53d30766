package gojajson

import (
	"testing"

	"github.com/dop251/goja"
)

// The native JSON replaces the engine's for every core, so it must give
// the same results as goja's own implementation.
func TestNativeJSONMatchesStock(t *testing.T) {
	exprs := []string{
		`JSON.stringify({a: 1, b: 'x', c: [1, 2, {d: null}], e: true, f: false})`,
		`JSON.stringify({u: undefined, f: function () {}, s: Symbol('x'), n: NaN, i: Infinity, z: -0})`,
		`JSON.stringify([undefined, function () {}, NaN, 1.5, 1e21, 1e-7, 123456789012345680000])`,
		`JSON.stringify({d: new Date(0), t: {toJSON: function () { return 'custom'; }}})`,
		`JSON.stringify('quote " backslash \\ nl \n tab \t ctl \u0001 uni \u00e9 \u4e2d emoji \ud83d\ude00 <>&')`,
		`JSON.stringify({a: [1, {b: 2}], c: {}}, null, 2)`,
		`JSON.stringify({a: [1, {b: 2}], c: []}, null, '--')`,
		`JSON.stringify(new String('s')) + JSON.stringify(new Number(3)) + JSON.stringify(new Boolean(false))`,
		`JSON.stringify(undefined) === undefined`,
		`JSON.stringify({'2': 'b', '1': 'a', x: 'c'})`,
		`JSON.stringify({a: 1, b: 2}, ['a'])`,
		`JSON.stringify(JSON.parse('{"a":[1,2.5,-3,1e3,"x\\u0041\\n\\ud83d\\ude00",true,false,null,{}],"b":{"c":[]}}'))`,
		`JSON.stringify(JSON.parse(' [ 1 , 2 ] '))`,
		`var o = JSON.parse('{"__proto__": {"x": 1}}'); Object.getPrototypeOf(o) === Object.prototype && o.x === undefined`,
		`JSON.parse('-0') === 0 && 1 / JSON.parse('-0') === -Infinity`,
		`JSON.parse('9007199254740993') === 9007199254740992`,
		`JSON.parse('"a"', function (k, v) { return v + 'b'; })`,
		`JSON.stringify(JSON.parse('{"a":1,"a":2}'))`,
	}
	for _, e := range exprs {
		t.Run(e, func(t *testing.T) {
			stock, err1 := goja.New().RunString(e)
			native, err2 := nativeRuntime().RunString(e)
			if err1 != nil || err2 != nil {
				t.Fatalf("errors: stock %v, native %v", err1, err2)
			}
			if !stock.StrictEquals(native) {
				t.Errorf("stock %q, native %q", stock, native)
			}
		})
	}
}

func TestNativeJSONErrors(t *testing.T) {
	bad := []string{
		`JSON.parse('{')`, `JSON.parse('[1,]')`, `JSON.parse('{"a":1,}')`, `JSON.parse('01')`, `JSON.parse('"\t"')`,
		`JSON.parse('tru')`, `JSON.parse('1 2')`, `JSON.parse('')`, `JSON.parse('"\\x"')`,
		`var a = {}; a.a = a; JSON.stringify(a)`, `JSON.stringify(10n)`,
	}
	for _, e := range bad {
		t.Run(e, func(t *testing.T) {
			if _, err := goja.New().RunString(e); err == nil {
				t.Fatalf("stock goja accepts %s", e)
			}
			if _, err := nativeRuntime().RunString(e); err == nil {
				t.Errorf("native accepts %s", e)
			}
		})
	}
}

// TestStringifyRethrows checks that what a toJSON or a wrapper's valueOf
// throws reaches the script's catch as it was thrown, not rewrapped.
func TestStringifyRethrows(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"toJSON throws", `JSON.stringify([1, {toJSON: function(){ throw new RangeError("mine") }}])`, "RangeError: mine"},
		{"toJSON references nothing", `JSON.stringify({a: {toJSON: function(){ return nothere }}})`, "ReferenceError: nothere is not defined"},
		{"valueOf throws", `var n = new Number(1); n.valueOf = function(){ throw new RangeError("mine") }; JSON.stringify([n])`, "RangeError: mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := `try { ` + tt.src + `; "no throw" } catch (e) { e.name + ": " + e.message }`
			got, err := nativeRuntime().RunString(code)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("caught %q, want %q", got, tt.want)
			}
		})
	}
}

// nativeRuntime is a stock goja runtime with this codec installed, as a
// core's runtime has it.
func nativeRuntime() *goja.Runtime {
	rt := goja.New()
	Install(rt)
	return rt
}
