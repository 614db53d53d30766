// Package gojajson is a JSON codec for the goja runtime, about three times
// faster than goja's own JSON.parse/JSON.stringify on the script host's
// workloads.
//
// goja's JSON.parse goes through encoding/json's token stream and
// JSON.stringify through generic property access with many small
// allocations; profiling the benchmark workloads showed most of the JSON
// round trip spent there. This codec parses straight into goja objects and
// serializes straight into a byte buffer, and the same code carries server
// messages in and out of the runtime without ever making an intermediate
// JS string.
//
// It parses untrusted bytes (every message the server sends a core), so it
// is fuzzed against goja's own JSON as the oracle (FuzzParse, FuzzStringify):
// same values, same accept/reject decision, the same error classes. The
// deliberate differences are listed on Parse; where goja's stringify departs
// from ECMAScript (indentation after an empty [] or {}, Object(Symbol())),
// this codec follows ECMAScript and V8.
package gojajson

import (
	"errors"
	"fmt"

	"github.com/dop251/goja"
)

// Install swaps rt's JSON.parse/stringify for this codec, keeping goja's
// originals for the forms it does not handle (reviver, replacer).
func Install(rt *goja.Runtime) {
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
		val, err := ParseString(rt, c.Argument(0).String())
		if err != nil {
			panic(syntaxError(rt, err))
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
		ok, err := e.value("", c.Argument(0), 0)
		if err != nil {
			// What a toJSON or valueOf threw goes on as it was thrown, so
			// a script's catch sees its own error; the codec's own
			// refusals (cycle, BigInt, depth) are TypeErrors, as goja's.
			var ex *goja.Exception
			if errors.As(err, &ex) {
				panic(ex)
			}
			panic(rt.NewTypeError(err.Error()))
		}
		if !ok {
			return goja.Undefined()
		}
		return rt.ToValue(string(e.buf))
	})
}

// syntaxError is the SyntaxError JSON.parse throws, as goja's own does, so
// a script's catch sees the same class.
func syntaxError(rt *goja.Runtime, err error) *goja.Object {
	msg := rt.ToValue("JSON.parse: " + err.Error())
	if ctor, ok := goja.AssertConstructor(rt.Get("SyntaxError")); ok {
		if o, cerr := ctor(nil, msg); cerr == nil {
			return o
		}
	}
	return rt.NewGoError(fmt.Errorf("JSON.parse: %w", err))
}
