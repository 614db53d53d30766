package update

import (
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"fmt"
	"strings"
)

// CheckPlatform reports whether the file at path is an executable for
// platform (GOOS/GOARCH), from its header: a signed manifest naming the
// right platform over a binary built for another would otherwise only
// show itself when the service fails to start.
func CheckPlatform(path, platform string) error {
	goos, goarch, _ := strings.Cut(platform, "/")
	switch goos {
	case "linux", "freebsd", "openbsd", "netbsd":
		f, err := elf.Open(path)
		if err != nil {
			return fmt.Errorf("not an ELF executable: %w", err)
		}
		defer f.Close()
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "386": elf.EM_386, "arm": elf.EM_ARM, "riscv64": elf.EM_RISCV}[goarch]
		if want == 0 || f.Machine != want {
			return fmt.Errorf("ELF for %v, not %s", f.Machine, goarch)
		}
		if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
			return fmt.Errorf("ELF of type %v is not an executable", f.Type)
		}
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			return fmt.Errorf("not a PE executable: %w", err)
		}
		defer f.Close()
		want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64, "386": pe.IMAGE_FILE_MACHINE_I386}[goarch]
		if want == 0 || f.Machine != want {
			return fmt.Errorf("PE for machine %#x, not %s", f.Machine, goarch)
		}
		if f.Characteristics&pe.IMAGE_FILE_EXECUTABLE_IMAGE == 0 || f.Characteristics&pe.IMAGE_FILE_DLL != 0 {
			return fmt.Errorf("PE is not an executable image")
		}
	case "darwin":
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if ff, err := macho.OpenFat(path); err == nil {
			defer ff.Close()
			for _, a := range ff.Arches {
				if a.Cpu == want && a.Type == macho.TypeExec {
					return nil
				}
			}
			return fmt.Errorf("universal Mach-O without a %s executable", goarch)
		}
		f, err := macho.Open(path)
		if err != nil {
			return fmt.Errorf("not a Mach-O executable: %w", err)
		}
		defer f.Close()
		if want == 0 || f.Cpu != want || f.Type != macho.TypeExec {
			return fmt.Errorf("Mach-O for %v (type %v), not a %s executable", f.Cpu, f.Type, goarch)
		}
	default:
		return fmt.Errorf("platform %q not supported", platform)
	}
	return nil
}
