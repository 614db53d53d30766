/*
 * Test support only, never shipped: wine 8 has no bcryptprimitives.dll, and
 * the Go runtime (>= 1.22) refuses to start without its ProcessPrng export.
 * This stand-in fills the buffer from advapi32's SystemFunction036
 * (RtlGenRandom), the generator wine itself provides. The wine lane
 * (internal/winetest/cmd/winelane) builds it into the test prefix's
 * system32; it is never part of an agent build or release.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
