package agentdl

// agentType is one entry of MeshCentral's agent table
// (meshcentral.js meshAgentsArchitectureNumbers): the id install scripts and
// download links ask for, the file name of the C agent's binary in
// MeshCentral's agents directory, the name the download is saved as, and
// the platform, which decides whether a .msh is embedded.
type agentType struct {
	local, rname, platform string
	// goos/goarch name our agent's build for this id ("" = we build none).
	goos, goarch string
}

// agentTypes lists the ids an administrator can serve. Ours are the
// release.sh targets; the C agent can fill every other id.
var agentTypes = map[int]agentType{
	1:     {"MeshConsole.exe", "meshconsole32.exe", "win32", "", ""},
	2:     {"MeshConsole64.exe", "meshconsole64.exe", "win32", "", ""},
	3:     {"MeshService.exe", "meshagent32.exe", "win32", "", ""},
	4:     {"MeshService64.exe", "meshagent64.exe", "win32", "windows", "amd64"},
	5:     {"meshagent_x86", "meshagent", "linux", "", ""},
	6:     {"meshagent_x86-64", "meshagent", "linux", "linux", "amd64"},
	7:     {"meshagent_mips", "meshagent", "linux", "", ""},
	9:     {"meshagent_arm", "meshagent", "linux", "", ""},
	13:    {"meshagent_pogo", "meshagent", "linux", "", ""},
	15:    {"meshagent_poky", "meshagent", "linux", "", ""},
	16:    {"meshagent_osx-x86-64", "meshagent", "osx", "darwin", "amd64"},
	18:    {"meshagent_poky64", "meshagent", "linux", "", ""},
	19:    {"meshagent_x86_nokvm", "meshagent", "linux", "", ""},
	20:    {"meshagent_x86-64_nokvm", "meshagent", "linux", "", ""},
	24:    {"meshagent_arm-linaro", "meshagent", "linux", "", ""},
	25:    {"meshagent_armhf", "meshagent", "linux", "", ""},
	26:    {"meshagent_aarch64", "meshagent", "linux", "linux", "arm64"},
	27:    {"meshagent_armhf2", "meshagent", "linux", "", ""},
	28:    {"meshagent_mips24kc", "meshagent", "linux", "", ""},
	29:    {"meshagent_osx-arm-64", "meshagent", "osx", "darwin", "arm64"},
	30:    {"meshagent_freebsd_x86-64", "meshagent", "freebsd", "", ""},
	32:    {"meshagent_aarch64", "meshagent", "linux", "linux", "arm64"},
	33:    {"meshagent_openwrt_x86_64", "meshagent", "linux", "", ""},
	35:    {"meshagent_linux-armada370-hf", "meshagent", "linux", "", ""},
	36:    {"meshagent_openwrt_x86_64", "meshagent", "linux", "", ""},
	37:    {"meshagent_openbsd_x86-64", "meshagent", "linux", "", ""},
	40:    {"meshagent_mipsel24kc", "meshagent", "linux", "", ""},
	41:    {"meshagent_aarch64-cortex-a53", "meshagent", "linux", "", ""},
	42:    {"MeshConsoleARM64.exe", "meshconsolearm64.exe", "win32", "", ""},
	43:    {"MeshServiceARM64.exe", "meshagentarm64.exe", "win32", "", ""},
	45:    {"meshagent_riscv64", "meshagent", "linux", "", ""},
	10003: {"MeshService.exe", "meshagent32.exe", "win32", "", ""},
	10004: {"MeshService64.exe", "meshagent64.exe", "win32", "windows", "amd64"},
	10005: {"meshagent_osx-universal-64", "meshagent", "osx", "", ""},
}

// installScript is one of MeshCentral's install scripts
// (meshcentral.js meshAgentsInstallScriptList), served from the C agent
// directory when the administrator put MeshCentral's agents there; they are
// MeshCentral's files, not part of server-lite.
type installScript struct{ local, rname string }

var installScripts = map[int]installScript{
	1: {"meshinstall-linux.sh", "meshinstall.sh"},
	2: {"meshinstall-initd.sh", "meshagent"},
	5: {"meshinstall-bsd-rcd.sh", "meshagent"},
	6: {"meshinstall-linux.js", "meshinstall.js"},
}

// Trailer GUIDs MeshCentral's exeHandler.js writes after content appended
// to an unsigned binary: the C agent looks for them at the end of its own
// file (JavaScript to run instead of the agent, or the .msh policy).
const (
	javaScriptGUID = "B996015880544A19B7F7E9BE44914C18"
	meshPolicyGUID = "B996015880544A19B7F7E9BE44914C19"
)
