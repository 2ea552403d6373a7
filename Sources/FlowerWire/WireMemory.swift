// Keeping frame-sized buffers warm. glibc serves allocations above 32 MiB with fresh mmap()s and
// unmaps them on free, so every 40 MB frame page-faults its memory in again (measured: encode of a
// 10M-parameter FitIns 22 ms cold vs 6 ms warm, BENCHMARKS.md "Wire"). Raising glibc's mmap and
// trim thresholds lets freed frames be reused from the heap instead.
//
// That holds only in glibc's main arena. Threads that first allocate while it is busy get arenas
// of their own: heaps of at most 64 MiB that are mmap()ed and shrunk on free, so a 40 MB frame
// packed or decoded on an event-loop or task-pool thread is page-faulted in anew every time
// whatever the thresholds (measured: 10M-parameter round trip 370 ms, 117 ms with one arena;
// BENCHMARKS.md "Wire"). `useOneArena()` keeps every thread on the main arena; small allocations
// still go through each thread's lock-free tcache.
#if canImport(Glibc)
import FlowerWireCodec
import Glibc
#endif
import Synchronization

/// glibc's `mallopt` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32

/// Process-wide memory tuning for large frames.
public enum WireMemory {
    private static let applied = Mutex(0)

    /// Lets freed buffers up to `bytes` (capped at 1 GiB) stay in the heap for reuse instead of
    /// being unmapped; the process keeps up to a few frames' worth of memory after a round.
    /// Idempotent; only ever raises the threshold. Called by `WireServer.start` and `WireClient.run`
    /// unless their config sets `retainFrameBuffers = false`.
    public static func retainLargeBuffers(upTo bytes: Int) {
        let threshold = Int32(clamping: min(max(bytes, 32 << 20), 1 << 30))
        applied.withLock { current in
            guard threshold > current else { return }
            current = Int(threshold)
            _ = glibcMallopt(-3, threshold)  // M_MMAP_THRESHOLD
            _ = glibcMallopt(-1, threshold)  // M_TRIM_THRESHOLD
        }
    }

    /// Keeps every thread's allocations in glibc's main arena (`M_ARENA_MAX` = 1), where freed
    /// frame buffers stay for reuse. Call it first thing in `main`, before other threads exist:
    /// a thread that already has an arena of its own keeps it.
    public static func useOneArena() {
        _ = glibcMallopt(-8, 1)  // M_ARENA_MAX
    }
}
