package memtrim

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimExecutable advises the kernel about the executable's read-only
// mappings. MADV_PAGEOUT only drops clean file pages (or swaps private
// dirty ones, which keeps their content), so relocated or written pages
// are never lost; kernels before 5.4 reject it and only MADV_RANDOM applies.
func trimExecutable() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00ac3000 r-xp 00000000 fd:01 1234 /path/to/exe
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		madvise(uintptr(start), uintptr(end-start), unix.MADV_RANDOM)
		madvise(uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}

func madvise(addr, length uintptr, advice int) {
	unix.Syscall(unix.SYS_MADVISE, addr, length, uintptr(advice))
}
