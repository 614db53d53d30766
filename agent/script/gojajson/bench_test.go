package gojajson

import (
	"testing"

	"github.com/dop251/goja"
)

// benchMsg is a typical server message to a core.
const benchMsg = `{"action":"msg","type":"console","value":"help","rights":4294967295,"sessionid":"user/domain/admin/abcdef","username":"admin","userid":"user//admin","remoteaddr":"127.0.0.1","list":[1,2.5,"x",true,null,{"a":[]}]}`

// BenchmarkParse compares the codec's JSON.parse with goja's own.
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name string
		rt   *goja.Runtime
	}{{"codec", nativeRuntime()}, {"stock", goja.New()}} {
		b.Run(c.name, func(b *testing.B) {
			arg := c.rt.ToValue(benchMsg)
			for b.Loop() {
				if _, err := call(c.rt, "parse", arg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStringify compares the codec's JSON.stringify with goja's own.
func BenchmarkStringify(b *testing.B) {
	for _, c := range []struct {
		name string
		rt   *goja.Runtime
	}{{"codec", nativeRuntime()}, {"stock", goja.New()}} {
		b.Run(c.name, func(b *testing.B) {
			v, err := call(c.rt, "parse", c.rt.ToValue(benchMsg))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := call(c.rt, "stringify", v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
