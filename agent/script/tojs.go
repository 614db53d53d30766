package script

import (
	"github.com/dop251/goja"

	"github.com/meshgo/meshagent/agent/script/gojajson"
)

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
		v, err := gojajson.Parse(rt, t)
		if err != nil {
			return goja.Null()
		}
		return v
	}
	return rt.ToValue(x)
}
