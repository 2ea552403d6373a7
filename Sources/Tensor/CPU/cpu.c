// CPU feature probe: cpuid + xgetbv, compiled for baseline x86-64 so it runs anywhere.
#include "CTensorCPU.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

int flwr_tensor_cpu_level(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx || !fma) return 0;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return 0;               // XMM and YMM state saved by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    if (!avx2) return 0;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1, avx512cd = (b >> 28) & 1;
    int zmmState = (xcr0 & 0xE6) == 0xE6;              // opmask, ZMM_Hi256, Hi16_ZMM saved
    if (avx512f && avx512dq && avx512bw && avx512vl && avx512cd && zmmState) return 2;
    return 1;
}
#else
int flwr_tensor_cpu_level(void) { return 0; }
#endif
