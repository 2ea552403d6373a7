// DP-FedAvg's noise source, BENCHMARKS.md "User-level DP": 10^6 64-bit draws from
// SystemRandomNumberGenerator (one getrandom(2) call per draw) against /dev/urandom read in
// 32 KiB blocks (what Sources/Privacy/DPRandom.swift used before its AES-256-CTR keystream,
// KeystreamRandom). Both are the kernel's CSPRNG.
//   swiftc -O Benchmarks/secure_random.swift -o /tmp/secure_random && /tmp/secure_random
import Foundation

let n = 1_000_000
var system = SystemRandomNumberGenerator()
var t0 = Date()
var acc: UInt64 = 0
for _ in 0 ..< n { acc ^= system.next() }
let systemSeconds = Date().timeIntervalSince(t0)

let fd = open("/dev/urandom", O_RDONLY)
var buffer = [UInt64](repeating: 0, count: 4096)
var index = buffer.count
t0 = Date()
for _ in 0 ..< n {
    if index == buffer.count {
        let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        precondition(got == buffer.count * 8, "short read from /dev/urandom")
        index = 0
    }
    acc ^= buffer[index]
    index += 1
}
let blockSeconds = Date().timeIntervalSince(t0)
print(String(format: "SystemRandomNumberGenerator: %.3f s; /dev/urandom 32 KiB blocks: %.3f s; ratio %.1fx (%d draws, checksum bit %d)",
             systemSeconds, blockSeconds, systemSeconds / blockSeconds, n, Int(acc & 1)))
