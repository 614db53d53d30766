package script

import (
	"testing"

	"github.com/dop251/goja"
	"github.com/meshgo/meshagent/agent/script/gojajson"
)

// benchRuntime returns a runtime set up like a core's (native JSON) or a
// stock goja one, to show what the native paths buy.
func benchRuntime(native bool) *goja.Runtime {
	if !native {
		return goja.New()
	}
	v := newVM(New(Config{}), 0, "bench", nil)
	v.install()
	return v.rt
}

func benchWorkload(b *testing.B, w Workload, native bool) {
	rt := benchRuntime(native)
	if w.Setup != "" {
		if _, err := rt.RunString(w.Setup); err != nil {
			b.Fatal(err)
		}
	}
	p, err := goja.Compile(w.Name, w.Run, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rt.RunProgram(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWorkloads(b *testing.B) {
	for _, w := range Workloads {
		b.Run(w.Name, func(b *testing.B) { benchWorkload(b, w, true) })
		b.Run(w.Name+"/stock", func(b *testing.B) { benchWorkload(b, w, false) })
	}
}

func BenchmarkDeliverParse(b *testing.B) {
	rt := benchRuntime(true)
	msg := []byte(`{"action":"msg","type":"console","value":"help","rights":4294967295,"sessionid":"user/domain/admin/abcdef","username":"admin","userid":"user//admin","remoteaddr":"127.0.0.1"}`)
	for i := 0; i < b.N; i++ {
		if _, err := gojajson.Parse(rt, msg); err != nil {
			b.Fatal(err)
		}
	}
}
