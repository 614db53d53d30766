package desktop

import (
	"fmt"
	"sort"
	"strings"
)

// usShifted is the shifted level of the keys whose VK names the unshifted
// symbol, as on a US keyboard: the viewer sends Shift and the VK of the
// physical key, like the X path relies on the server's map for.
var usShifted = map[uint32]uint32{
	'1': '!', '2': '@', '3': '#', '4': '$', '5': '%', '6': '^', '7': '&', '8': '*', '9': '(', '0': ')',
	';': ':', '=': '+', ',': '<', '-': '_', '.': '>', '/': '?', '`': '~', '[': '{', '\\': '|', ']': '}',
	'\'': '"', '<': '>',
}

// modifier bits of the real modifiers as the "complete" compat map lays
// them out (Shift, Lock, Control, Mod1..Mod5).
const (
	modShift   = 1 << 0
	modLock    = 1 << 1
	modControl = 1 << 2
	modMod1    = 1 << 3 // Alt
	modMod2    = 1 << 4 // NumLock
	modMod4    = 1 << 6 // Super
)

// modOf names the modifier a keysym drives, for the modifier_map lines and
// for the masks the virtual keyboard must report itself (wlroots does not
// derive them from virtual key events).
func modOf(sym uint32) (name string, bit uint32) {
	switch sym {
	case 0xffe1, 0xffe2:
		return "Shift", modShift
	case 0xffe5:
		return "Lock", modLock
	case 0xffe3, 0xffe4:
		return "Control", modControl
	case 0xffe9, 0xffea:
		return "Mod1", modMod1
	case 0xff7f:
		return "Mod2", modMod2
	case 0xffeb, 0xffec:
		return "Mod4", modMod4
	}
	return "", 0
}

const (
	wlFirstKeycode = 9   // XKB keycodes; evdev code = keycode - 8
	wlMaxKeycode   = 255 // what Xwayland clients can still use
)

// wlKeymap is the keymap we give the virtual keyboard: every VK the viewer
// sends gets its own keycode (two levels where a US keyboard has them),
// and characters typed as UNICODE get spare keycodes of one level each,
// reused oldest first when they run out.
type wlKeymap struct {
	vkCode  map[byte]uint32 // VK -> XKB keycode
	levels  map[uint32][2]uint32
	uniCode map[uint32]uint32 // keysym -> keycode for UNICODE input
	uniLRU  []uint32          // keysyms, oldest first
	spare   []uint32          // keycodes for UNICODE input
}

func newWLKeymap() *wlKeymap {
	k := &wlKeymap{vkCode: map[byte]uint32{}, levels: map[uint32][2]uint32{}, uniCode: map[uint32]uint32{}}
	vks := make([]int, 0, len(vkKeysyms))
	for vk := range vkKeysyms {
		vks = append(vks, int(vk))
	}
	sort.Ints(vks)
	code := uint32(wlFirstKeycode)
	for _, vk := range vks {
		sym := uint32(vkKeysyms[byte(vk)])
		k.vkCode[byte(vk)] = code
		lv := [2]uint32{sym, 0}
		if sym >= 'a' && sym <= 'z' {
			lv[1] = sym - 32
		} else if s, ok := usShifted[sym]; ok {
			lv[1] = s
		}
		k.levels[code] = lv
		code++
	}
	for ; code <= wlMaxKeycode; code++ {
		k.spare = append(k.spare, code)
	}
	return k
}

// unicodeKey returns the keycode for a keysym typed as a character and
// whether the keymap had to change (then it must be uploaded again).
func (k *wlKeymap) unicodeKey(sym uint32) (code uint32, changed bool) {
	if c, ok := k.uniCode[sym]; ok {
		return c, false
	}
	if len(k.spare) > 0 {
		code, k.spare = k.spare[0], k.spare[1:]
	} else {
		old := k.uniLRU[0]
		k.uniLRU = k.uniLRU[1:]
		code = k.uniCode[old]
		delete(k.uniCode, old)
	}
	k.uniCode[sym] = code
	k.uniLRU = append(k.uniLRU, sym)
	k.levels[code] = [2]uint32{sym, 0}
	return code, true
}

// text renders the keymap in XKB v1 text form. Types and compat come from
// the compositor's "complete" set (xkeyboard-config), so two-level keys
// get the usual Shift and Lock behaviour.
func (k *wlKeymap) text() string {
	codes := make([]int, 0, len(k.levels))
	for c := range k.levels {
		codes = append(codes, int(c))
	}
	sort.Ints(codes)
	var b strings.Builder
	b.WriteString("xkb_keymap {\nxkb_keycodes \"meshagent\" {\n")
	fmt.Fprintf(&b, "minimum = 8;\nmaximum = %d;\n", wlMaxKeycode)
	for _, c := range codes {
		fmt.Fprintf(&b, "<K%d> = %d;\n", c, c)
	}
	b.WriteString("};\nxkb_types \"meshagent\" { include \"complete\" };\n")
	b.WriteString("xkb_compatibility \"meshagent\" { include \"complete\" };\n")
	b.WriteString("xkb_symbols \"meshagent\" {\n")
	mods := map[string][]int{}
	for _, c := range codes {
		lv := k.levels[uint32(c)]
		if lv[1] != 0 {
			fmt.Fprintf(&b, "key <K%d> { [ 0x%08x, 0x%08x ] };\n", c, lv[0], lv[1])
		} else {
			fmt.Fprintf(&b, "key <K%d> { [ 0x%08x ] };\n", c, lv[0])
		}
		if name, _ := modOf(lv[0]); name != "" {
			mods[name] = append(mods[name], c)
		}
	}
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		keys := make([]string, len(mods[n]))
		for i, c := range mods[n] {
			keys[i] = fmt.Sprintf("<K%d>", c)
		}
		fmt.Fprintf(&b, "modifier_map %s { %s };\n", n, strings.Join(keys, ", "))
	}
	b.WriteString("};\n};\n")
	return b.String()
}
