package sysinfo

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"

	gnet "github.com/shirou/gopsutil/v4/net"
)

// NetIf is one address of one interface in MeshCentral's netif2 shape
// (control.md 6.5). Elements of one interface share MAC, type and speed.
type NetIf struct {
	Address string `json:"address,omitempty"`
	Netmask string `json:"netmask,omitempty"`
	Family  string `json:"family,omitempty"` // "IPv4" or "IPv6"
	MAC     string `json:"mac"`
	Gateway string `json:"gateway,omitempty"`
	Type    string `json:"type"`            // ethernet, wireless, loopback, tunnel, other
	Speed   int64  `json:"speed,omitempty"` // bits per second
	Status  string `json:"status"`          // up or down
	CIDR    string `json:"cidr,omitempty"`
	Index   int    `json:"index"`
}

// NetInfo returns the netif2 map: interface name -> addresses. Interfaces
// without any address are kept (one element carrying the MAC) only when
// they have a hardware address, since Wake-on-LAN reads MACs from here.
func NetInfo(ctx context.Context) (map[string][]NetIf, error) {
	ifs, err := gnet.InterfacesWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	gw4, gw6 := gateways()
	out := map[string][]NetIf{}
	for _, it := range ifs {
		mac := it.HardwareAddr
		if mac == "" {
			mac = "00:00:00:00:00:00"
		}
		typ, speed := ifTypeSpeed(it.Name, slices.Contains(it.Flags, "loopback"))
		status := "down"
		if slices.Contains(it.Flags, "up") {
			status = "up"
		}
		var list []NetIf
		for _, a := range it.Addrs {
			ip, ipn, err := net.ParseCIDR(a.Addr)
			if err != nil {
				continue
			}
			e := NetIf{Address: ip.String(), MAC: mac, Type: typ, Speed: speed, Status: status, CIDR: a.Addr, Index: it.Index}
			if ip.To4() != nil {
				e.Family = "IPv4"
				e.Netmask = net.IP(ipn.Mask).String()
				e.Gateway = gw4[it.Name]
			} else {
				e.Family = "IPv6"
				e.Netmask = net.IP(ipn.Mask).String()
				e.Gateway = gw6[it.Name]
			}
			list = append(list, e)
		}
		if len(list) == 0 {
			if it.HardwareAddr == "" {
				continue
			}
			list = append(list, NetIf{MAC: mac, Type: typ, Speed: speed, Status: status, Index: it.Index})
		}
		// IPv4 first, as the C agent lists them; stable order keeps the
		// server from seeing a "change" on every report.
		sort.SliceStable(list, func(i, j int) bool { return list[i].Family == "IPv4" && list[j].Family != "IPv4" })
		out[it.Name] = list
	}
	return out, nil
}
