package files

import "testing"

func TestCleanWindowsPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{`C:\Users\me`, `C:\Users\me`},
		{`c:/Users/me/`, `C:\Users\me`},
		{`C:`, `C:\`},
		{`\C:\x`, `C:\x`},
		{`C:\a\..\..\..\b`, `C:\b`},
		{`\\srv\share\dir\..\f`, `\\srv\share\f`},
		{`\\srv\share`, `\\srv\share\`},
		{`//srv/share/../../x`, `\\srv\share\x`},
		{`C:dir`, ""},
		{`\dir`, ""},
		{`dir`, ""},
		{``, ""},
		{`\\?\C:\x`, ""},
		{`\\.\PhysicalDrive0`, ""},
		{`\\srv`, ""},
		{`\\srv\..\x`, ""},
		{"C:\\a\x00b", ""},
	}
	for _, tc := range cases {
		got, err := cleanWindowsPath(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("cleanWindowsPath(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cleanWindowsPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, n := range []string{"a", "a b.txt", "..a", "a..", ".hidden"} {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "a/b", "/", "a\x00"} {
		if checkName(n) == nil {
			t.Errorf("checkName(%q) accepted", n)
		}
	}
}
