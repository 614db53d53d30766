package sysinfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// The Windows battery, GPU, TPM and pending-reboot details, read with
// plain Win32 calls (no cgo, no WMI): what the C agent gets from
// Win32_Battery-like driver queries, Win32_VideoController, Win32_Tpm and
// win-info.js's registry checks. Each reader fails soft: a call that is
// missing (wine, an old Windows) or refused leaves its field out.

// fillExtras adds hardware.battery, identifiers.gpu_name (and
// hardware.windows.gpu), hardware.tpm and pendingReboot.
func fillExtras(hw, ident, data map[string]any) {
	if b := windowsBatteries(); len(b) > 0 {
		hw["battery"] = b
	}
	if names := displayAdapters(); len(names) > 0 {
		var gn, wg []any
		for _, n := range names {
			gn = append(gn, n)
			wg = append(wg, map[string]any{"Name": n})
		}
		ident["gpu_name"] = gn
		if plat, _ := hw["windows"].(map[string]any); plat != nil {
			plat["gpu"] = wg
		}
	}
	if t := windowsTPM(); t != nil {
		hw["tpm"] = t
	}
	if r := pendingRebootWindows(); r != "" {
		data["pendingReboot"] = r
	}
}

// guidDeviceBattery is GUID_DEVCLASS_BATTERY, also the battery drivers'
// device interface class.
var guidDeviceBattery = windows.GUID{Data1: 0x72631e54, Data2: 0x78a4, Data3: 0x11d0,
	Data4: [8]byte{0xbc, 0xf7, 0x00, 0xaa, 0x00, 0xb7, 0xb3, 0x2a}}

// guidDevclassDisplay is GUID_DEVCLASS_DISPLAY, the display adapters'
// device setup class.
var guidDevclassDisplay = windows.GUID{Data1: 0x4d36e968, Data2: 0xe325, Data3: 0x11ce,
	Data4: [8]byte{0xbf, 0xc1, 0x08, 0x00, 0x2b, 0xe1, 0x03, 0x18}}

// IOCTL codes of the battery class driver (CTL_CODE(FILE_DEVICE_BATTERY,
// 0x10.., METHOD_BUFFERED, FILE_READ_ACCESS)).
const (
	ioctlBatteryQueryTag    = 0x294040
	ioctlBatteryQueryInfo   = 0x294044
	ioctlBatteryQueryStatus = 0x29404C
)

// BATTERY_QUERY_INFORMATION_LEVEL values.
const (
	batteryInformation     = 0
	batteryEstimatedTime   = 3
	batteryDeviceName      = 4
	batteryManufactureDate = 5
	batteryManufactureName = 6
	batterySerialNumber    = 8
)

// windowsBatteries asks each battery driver (the interfaces of the battery
// class) for its information and status; where none answers but
// GetSystemPowerStatus sees a battery, one entry with what that tells.
func windowsBatteries() []any {
	var out []any
	paths, _ := windows.CM_Get_Device_Interface_List("", &guidDeviceBattery, windows.CM_GET_DEVICE_INTERFACE_LIST_PRESENT)
	for _, p := range paths {
		if b, err := queryBattery(p); err == nil {
			out = append(out, b.Entry())
		}
	}
	if len(out) == 0 {
		var st [12]byte
		if getSystemPowerStatus(&st) == nil {
			if b, ok := PowerStatusBattery(st[:]); ok {
				out = append(out, b.Entry())
			}
		}
	}
	return out
}

var procGetSystemPowerStatus = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemPowerStatus")

func getSystemPowerStatus(st *[12]byte) error {
	if err := procGetSystemPowerStatus.Find(); err != nil {
		return err
	}
	if r, _, err := procGetSystemPowerStatus.Call(uintptr(unsafe.Pointer(&st[0]))); r == 0 {
		return fmt.Errorf("GetSystemPowerStatus: %w", err)
	}
	return nil
}

func queryBattery(path string) (WinBattery, error) {
	var b WinBattery
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return b, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return b, fmt.Errorf("open battery %s: %w", path, err)
	}
	defer windows.CloseHandle(h)
	var wait, tag uint32
	var n uint32
	if err := windows.DeviceIoControl(h, ioctlBatteryQueryTag, (*byte)(unsafe.Pointer(&wait)), 4,
		(*byte)(unsafe.Pointer(&tag)), 4, &n, nil); err != nil || tag == 0 {
		return b, fmt.Errorf("battery tag: %w", err)
	}
	query := func(level uint32, out []byte) ([]byte, error) {
		var in [12]byte // BatteryTag, InformationLevel, AtRate
		binary.LittleEndian.PutUint32(in[0:], tag)
		binary.LittleEndian.PutUint32(in[4:], level)
		var got uint32
		if err := windows.DeviceIoControl(h, ioctlBatteryQueryInfo, &in[0], uint32(len(in)), &out[0], uint32(len(out)), &got, nil); err != nil {
			return nil, err
		}
		return out[:min(int(got), len(out))], nil
	}
	info, err := query(batteryInformation, make([]byte, 36))
	if err != nil {
		return b, fmt.Errorf("battery information: %w", err)
	}
	if err := ParseBatteryInformation(info, &b); err != nil {
		return b, err
	}
	relative := binary.LittleEndian.Uint32(info[0:])&batteryCapacityRelate != 0
	for level, dst := range map[uint32]*string{batteryDeviceName: &b.Name, batteryManufactureName: &b.Manufacturer, batterySerialNumber: &b.Serial} {
		if s, err := query(level, make([]byte, 512)); err == nil {
			*dst = UTF16String(s)
		}
	}
	if d, err := query(batteryManufactureDate, make([]byte, 4)); err == nil {
		b.ManufactureDate = ParseBatteryManufactureDate(d)
	}
	if t, err := query(batteryEstimatedTime, make([]byte, 4)); err == nil && len(t) == 4 {
		b.RuntimeSeconds = known(binary.LittleEndian.Uint32(t))
	}
	var ws [20]byte // BATTERY_WAIT_STATUS: tag, timeout 0, the rest 0
	binary.LittleEndian.PutUint32(ws[0:], tag)
	var st [16]byte
	if err := windows.DeviceIoControl(h, ioctlBatteryQueryStatus, &ws[0], uint32(len(ws)), &st[0], uint32(len(st)), &n, nil); err == nil {
		_ = ParseBatteryStatus(st[:n], relative, &b)
	}
	return b, nil
}

// displayAdapters names the present display adapters, as
// Win32_VideoController lists them: the display device class of SetupAPI
// (which also works in session 0, where a service runs), else the
// adapters EnumDisplayDevicesW lists for this session.
func displayAdapters() []string {
	names := setupAPIDisplayAdapters()
	if len(names) == 0 {
		names = enumDisplayAdapters()
	}
	var out []string
	for _, n := range names {
		if n = clip(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// setupAPIDisplayAdapters: each present device of the display class, by
// its friendly name or else its description.
func setupAPIDisplayAdapters() []string {
	set, err := windows.SetupDiGetClassDevsEx(&guidDevclassDisplay, "", 0, windows.DIGCF_PRESENT, 0, "")
	if err != nil {
		return nil
	}
	defer set.Close()
	var out []string
	for i := 0; ; i++ {
		d, err := set.EnumDeviceInfo(i)
		if err != nil {
			return out
		}
		for _, prop := range []windows.SPDRP{windows.SPDRP_FRIENDLYNAME, windows.SPDRP_DEVICEDESC} {
			if v, err := set.DeviceRegistryProperty(d, prop); err == nil {
				if s, ok := v.(string); ok && s != "" {
					out = append(out, s)
					break
				}
			}
		}
	}
}

var procEnumDisplayDevicesW = windows.NewLazySystemDLL("user32.dll").NewProc("EnumDisplayDevicesW")

// displayDevice is DISPLAY_DEVICEW.
type displayDevice struct {
	cb           uint32
	deviceName   [32]uint16
	deviceString [128]uint16
	stateFlags   uint32
	deviceID     [128]uint16
	deviceKey    [128]uint16
}

const displayDeviceMirroringDriver = 0x8

func enumDisplayAdapters() []string {
	if procEnumDisplayDevicesW.Find() != nil {
		return nil
	}
	var out []string
	for i := uintptr(0); i < 64; i++ {
		d := displayDevice{cb: uint32(unsafe.Sizeof(displayDevice{}))}
		if r, _, _ := procEnumDisplayDevicesW.Call(0, i, uintptr(unsafe.Pointer(&d)), 0); r == 0 {
			break
		}
		if d.stateFlags&displayDeviceMirroringDriver != 0 {
			continue
		}
		out = append(out, windows.UTF16ToString(d.deviceString[:]))
	}
	return out
}

var (
	tbs                    = windows.NewLazySystemDLL("tbs.dll")
	procTbsiGetDeviceInfo  = tbs.NewProc("Tbsi_GetDeviceInfo")
	procTbsiContextCreate  = tbs.NewProc("Tbsi_Context_Create")
	procTbsipSubmitCommand = tbs.NewProc("Tbsip_Submit_Command")
	procTbsipContextClose  = tbs.NewProc("Tbsip_Context_Close")
)

// windowsTPM reports the TPM the TPM Base Services see, in Win32_Tpm's
// field names: the spec version from Tbsi_GetDeviceInfo and, for a TPM
// 2.0, the manufacturer and firmware version from TPM2_GetCapability. TBS
// lists a TPM only when the firmware has it enabled and activated, so
// those two are true; whether it is owned is not known without WMI and is
// left out. nil when there is no TPM (or no tbs.dll).
func windowsTPM() map[string]any {
	if procTbsiGetDeviceInfo.Find() != nil {
		return nil
	}
	var info [16]byte
	if r, _, _ := procTbsiGetDeviceInfo.Call(uintptr(len(info)), uintptr(unsafe.Pointer(&info[0]))); r != 0 {
		return nil // TBS_E_TPM_NOT_FOUND and the like
	}
	spec := ParseTPMDeviceInfo(info[:])
	if spec == "" {
		return nil
	}
	t := map[string]any{"SpecVersion": spec, "IsEnabled": true, "IsActivated": true}
	if spec == "2.0" {
		if m, v, err := tpm2Properties(); err == nil {
			if m != "" {
				t["ManufacturerId"] = m
			}
			if v != "" {
				t["ManufacturerVersion"] = v
			}
		}
	}
	return t
}

func tpm2Properties() (string, string, error) {
	for _, p := range []*windows.LazyProc{procTbsiContextCreate, procTbsipSubmitCommand, procTbsipContextClose} {
		if err := p.Find(); err != nil {
			return "", "", err
		}
	}
	// TBS_CONTEXT_PARAMS2: version 2, flags includeTpm20 (bit 2).
	params := [2]uint32{2, 1 << 2}
	var ctx uintptr
	if r, _, _ := procTbsiContextCreate.Call(uintptr(unsafe.Pointer(&params[0])), uintptr(unsafe.Pointer(&ctx))); r != 0 {
		return "", "", fmt.Errorf("Tbsi_Context_Create: %#x", r)
	}
	defer procTbsipContextClose.Call(ctx)
	cmd := TPM2GetCapabilityCommand()
	resp := make([]byte, 4096)
	n := uint32(len(resp))
	// Locality 0, normal priority (200).
	if r, _, _ := procTbsipSubmitCommand.Call(ctx, 0, 200, uintptr(unsafe.Pointer(&cmd[0])), uintptr(len(cmd)),
		uintptr(unsafe.Pointer(&resp[0])), uintptr(unsafe.Pointer(&n))); r != 0 {
		return "", "", fmt.Errorf("Tbsip_Submit_Command: %#x", r)
	}
	if int(n) > len(resp) {
		return "", "", errors.New("Tbsip_Submit_Command: oversized answer")
	}
	return ParseTPM2Properties(resp[:n])
}

// pendingRebootWindows checks the registry the way meshcore.js's win-info
// does: servicing's RebootPending and Windows Update's RebootRequired
// (keys, as Windows writes them), a queued PendingFileRenameOperations,
// and a computer name that changes at the next boot.
func pendingRebootWindows() string {
	hasKey := func(path string) bool {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE)
		if err != nil {
			return false
		}
		k.Close()
		return true
	}
	strs := func(path, name string) []string {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE)
		if err != nil {
			return nil
		}
		defer k.Close()
		if v, _, err := k.GetStringsValue(name); err == nil {
			return v
		}
		if v, _, err := k.GetStringValue(name); err == nil {
			return []string{v}
		}
		return nil
	}
	str := func(path, name string) string {
		if v := strs(path, name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return windowsPendingReboot(
		hasKey(`SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending`),
		hasKey(`SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired`),
		strs(`SYSTEM\CurrentControlSet\Control\Session Manager`, "PendingFileRenameOperations"),
		str(`SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName`, "ComputerName"),
		str(`SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName`, "ComputerName"))
}
