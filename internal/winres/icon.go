package winres

import "encoding/binary"

// AgentIcon draws the agent's icon at size×size pixels as a 32-bit DIB:
// a blue disc with a white ring and centre dot (a node on a mesh). It is
// drawn in code so no image file needs to be kept in sync.
func AgentIcon(size int) IconImage {
	le := binary.LittleEndian
	maskRow := ((size + 31) / 32) * 4
	b := make([]byte, 0, 40+size*size*4+maskRow*size)
	b = le.AppendUint32(b, 40)             // BITMAPINFOHEADER size
	b = le.AppendUint32(b, uint32(size))   // width
	b = le.AppendUint32(b, uint32(2*size)) // height: colour plus mask
	b = le.AppendUint16(b, 1)              // planes
	b = le.AppendUint16(b, 32)             // bits per pixel
	b = le.AppendUint32(b, 0)              // BI_RGB
	b = le.AppendUint32(b, uint32(size*size*4+maskRow*size))
	b = append(b, make([]byte, 16)...) // resolution, palette: unused
	c := float64(size-1) / 2
	r := float64(size) / 2
	for y := size - 1; y >= 0; y-- { // bottom-up
		for x := 0; x < size; x++ {
			dx, dy := float64(x)-c, float64(y)-c
			d2 := dx*dx + dy*dy
			var px [4]byte // B, G, R, A
			switch {
			case d2 > r*r:
				// transparent
			case d2 < (r*0.18)*(r*0.18) || (d2 > (r*0.5)*(r*0.5) && d2 < (r*0.68)*(r*0.68)):
				px = [4]byte{255, 255, 255, 255}
			default:
				px = [4]byte{0xC8, 0x6E, 0x1E, 255} // #1E6EC8
			}
			b = append(b, px[:]...)
		}
	}
	b = append(b, make([]byte, maskRow*size)...) // AND mask: alpha decides
	return IconImage{Width: size, Height: size, BitCount: 32, Data: b}
}
