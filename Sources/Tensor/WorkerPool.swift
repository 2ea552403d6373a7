// WorkerPool: persistent worker threads for Parallel.run, so the ~40 parallel regions of a
// training step do not each pay DispatchQueue.concurrentPerform's wake-up (tens of µs each,
// BENCHMARKS.md "Training engine").
//
// Design (a first attempt deadlocked, so every rule is written down):
// - One process-wide pool, used by one job at a time: `run` takes the pool with a
//   compare-exchange on `busy`; a caller that finds it busy (another CNN training at the same
//   time, or a nested Parallel.run inside a job) falls back to concurrentPerform. Nobody ever
//   waits for the pool itself, so two users cannot deadlock on it.
// - Jobs are numbered. `ticket` packs (job number << 32 | parts << 16 | next part) in one
//   atomic: a participant claims a part with a compare-exchange of the whole ticket, so a
//   worker that wakes late can never claim a part of a newer job, nor read a newer job's part
//   count with an older ticket. The caller returns only after `finished` reaches the job's
//   part count, so the closure outlives every claimed part.
// - The caller runs parts too; workers that are slow to wake simply find no part left.
// - Workers spin for a short while after a job (regions come back to back), then sleep on a
//   condition variable. The job number is advanced under the mutex and workers re-check it
//   under the mutex before waiting: no lost wake-up.
// - threads = 1 never reaches the pool (Parallel.run runs the body inline).
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A fixed set of worker threads executing one `run` at a time (see the header for the rules).
final class WorkerPool: @unchecked Sendable {
    /// The shared pool: one worker per core beyond the caller's, at most 7.
    static let shared = WorkerPool(workers: max(1, min(7, sysconf(Int32(_SC_NPROCESSORS_ONLN)) - 1)))

    private let workers: Int
    private let busy = Atomic<Bool>(false)
    private let ticket = Atomic<Int>(0)          // job << 32 | parts << 16 | next part
    private let finished = Atomic<Int>(0)        // parts finished in the current job
    private let published = Atomic<Int>(0)       // number of the latest job
    private var body: ((Int) -> Void)?
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var started = false

    init(workers: Int) {
        self.workers = workers
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    /// Runs body(0..<parts) on the caller and the workers; false (nothing run) if the pool is
    /// busy with another job or `parts` exceeds what a ticket can count.
    func run(_ parts: Int, _ body: (Int) -> Void) -> Bool {
        guard parts < 1 << 16, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return false }
        defer { busy.store(false, ordering: .releasing) }
        if !started { startWorkers() }
        withoutActuallyEscaping(body) { escapable in
            self.body = escapable
            finished.store(0, ordering: .relaxed)
            pthread_mutex_lock(&mutex)
            let job = published.load(ordering: .relaxed) + 1
            ticket.store(job << 32 | parts << 16, ordering: .releasing)
            published.store(job, ordering: .releasing)
            pthread_cond_broadcast(&condition)
            pthread_mutex_unlock(&mutex)
            work(job)
            var spins = 0
            while finished.load(ordering: .acquiring) < parts {
                spins += 1
                if spins > 4096 { sched_yield() }
            }
            self.body = nil
        }
        return true
    }

    /// Claims and runs parts of `job` until none is left.
    private func work(_ job: Int) {
        while true {
            let t = ticket.load(ordering: .acquiring)
            guard t >> 32 == job, t & 0xFFFF < (t >> 16) & 0xFFFF else { return }
            guard ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing).exchanged
            else { continue }
            body?(t & 0xFFFF)
            finished.add(1, ordering: .releasing)
        }
    }

    private func startWorkers() {
        started = true
        for _ in 0..<workers {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let status = pthread_create(&thread, nil, { context in
                guard let context else { return nil }
                Unmanaged<WorkerPool>.fromOpaque(context).takeRetainedValue().workerLoop()
                return nil
            }, context)
            if status == 0 { pthread_detach(thread) } else { Unmanaged<WorkerPool>.fromOpaque(context).release() }
        }
    }

    private func workerLoop() -> Never {
        var seen = 0
        while true {
            // Spin ~50 µs for the next job, then sleep until one is published.
            let deadline = DispatchTime.now().uptimeNanoseconds + 50_000
            var spins = 0
            while published.load(ordering: .acquiring) == seen {
                spins += 1
                if spins & 63 == 0 && DispatchTime.now().uptimeNanoseconds > deadline { break }
            }
            pthread_mutex_lock(&mutex)
            while published.load(ordering: .acquiring) == seen { pthread_cond_wait(&condition, &mutex) }
            seen = published.load(ordering: .acquiring)
            pthread_mutex_unlock(&mutex)
            work(seen)
        }
    }
}
