//! Threads: one rayon dispatch per forward pass, work claimed per layer, a wait for the
//! layer's completion between layers.
//!
//! A rayon `join` per layer costs a wake-up and a steal per layer; on the 0.25-MobileNet-128
//! a whole layer takes 1-15 us, so that overhead would eat the gain of a second core. Instead
//! every thread runs the whole layer loop once. Each layer's work (output rows, channel
//! blocks or weight panels) is cut into a few units per thread; a thread first takes its own
//! units in order, which keeps the split static and cache-friendly when all threads run, then
//! steals the units the others have not started, and finally waits until every unit of the
//! layer is done ([`Work::for_each`]). A plain barrier would make every layer wait for every
//! thread: on a machine shared with other processes a thread that loses its core stalls the
//! pass ~30 times, whereas here the others simply do its work.
//!
//! Waits spin for up to [`SPIN`], then sleep on a condvar, so a waiting thread hands its core
//! over instead of burning it. The calling thread takes part as thread 0 (`in_place_scope`),
//! so the dedicated pool only holds `threads - 1` workers and a single-threaded engine never
//! touches rayon at all.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::EngineError;

/// How long a thread spins before it sleeps. The threads' own shares are balanced, so a
/// layer normally completes within a few microseconds of a thread running out of work; a
/// longer wait means another thread lost its core and holds a unit.
const SPIN: Duration = Duration::from_micros(50);

/// Work units per thread and layer: enough to rebalance, few enough that claiming (one atomic
/// add per unit) costs nothing.
pub(crate) const UNITS_PER_THREAD: usize = 8;

/// An atomic counter on its own pair of cache lines (adjacent-line prefetch pairs them), so
/// threads bumping different counters do not contend.
#[repr(align(128))]
#[derive(Default)]
struct Counter(AtomicUsize);

/// The per-pass synchronisation state, reset at the start of every pass.
struct Schedule {
    threads: usize,
    /// `claimed[layer * threads + t]`: units taken from thread `t`'s own range of `layer`.
    claimed: Vec<Counter>,
    /// Units of each layer finished.
    done: Vec<Counter>,
    /// Layers the calling thread has finished inspecting, when `gated`.
    inspected: Counter,
    gated: AtomicBool,
    poisoned: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Schedule {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic while it was held leaves nothing inconsistent.
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_poison(&self) {
        if self.poisoned.load(Ordering::SeqCst) {
            panic!("another engine thread panicked");
        }
    }

    /// Wakes the threads sleeping in [`Schedule::wait_until`] after a condition changed. The
    /// change must be a SeqCst write: against the sleeper's SeqCst `sleepers` increment and
    /// condition load, one side sees the other's write, so no wake-up is lost.
    fn notify(&self) {
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock();
            self.wake.notify_all();
        }
    }

    /// Spins, then sleeps, until `ready()` (which must load with SeqCst) holds.
    fn wait_until(&self, ready: impl Fn() -> bool) {
        let start = Instant::now();
        let mut spins = 0u32;
        while !ready() {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                self.check_poison();
                if start.elapsed() > SPIN {
                    return self.sleep_until(ready);
                }
            }
            std::hint::spin_loop();
        }
    }

    fn sleep_until(&self, ready: impl Fn() -> bool) {
        let mut guard = self.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        while !ready() {
            if self.poisoned.load(Ordering::SeqCst) {
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
                panic!("another engine thread panicked");
            }
            guard = self.wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks the schedule poisoned if its thread unwinds and wakes the sleepers, so the others
/// stop waiting for work it will never finish.
struct PoisonOnUnwind<'a>(&'a Schedule);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::SeqCst);
            let _guard = self.0.lock();
            self.0.wake.notify_all();
        }
    }
}

/// What one thread knows about the team while running a forward pass.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) tid: usize,
    pub(crate) threads: usize,
    schedule: Option<&'a Schedule>,
}

impl<'a> Ctx<'a> {
    /// This thread's view of layer `layer`'s work.
    pub(crate) fn layer(&self, layer: usize) -> Work<'a> {
        Work {
            tid: self.tid,
            threads: self.threads,
            layer,
            schedule: self.schedule,
        }
    }

    /// Called by thread 0 when it has finished looking at layer `layer`'s output in a gated
    /// pass: from then on other threads may start the next layer, which may overwrite it.
    pub(crate) fn inspected(&self, layer: usize) {
        if let Some(schedule) = self.schedule {
            schedule.inspected.0.store(layer + 1, Ordering::SeqCst);
            schedule.notify();
        }
    }
}

/// One thread's part in one layer.
pub(crate) struct Work<'a> {
    pub(crate) tid: usize,
    pub(crate) threads: usize,
    layer: usize,
    schedule: Option<&'a Schedule>,
}

impl Work<'_> {
    /// Calls `f` on the units of `0..total` this thread claims (boundaries on multiples of
    /// `align`) and returns once every unit of the layer, whoever ran it, is finished; their
    /// writes are then visible to this thread. Every thread must call this exactly once per
    /// layer, with the same `total` and `align`.
    pub(crate) fn for_each(&self, total: usize, align: usize, f: impl FnMut(Range<usize>)) {
        self.for_each_units(total, align, UNITS_PER_THREAD * self.threads, f);
    }

    /// [`Work::for_each`] in at most `units` units (at least one; no more than `total / align`
    /// rounded up): for work whose units have a cost of their own (a GEMM unit streams all the
    /// layer's weights), where a few units per thread, as equal as `align` allows, beat many.
    pub(crate) fn for_each_units(
        &self,
        total: usize,
        align: usize,
        units: usize,
        mut f: impl FnMut(Range<usize>),
    ) {
        let Some(schedule) = self.schedule else {
            if total > 0 {
                f(0..total);
            }
            return;
        };
        if schedule.gated.load(Ordering::Relaxed) {
            // This layer may overwrite layer `layer - 1`'s output (in place) or `layer - 2`'s:
            // wait until the previous layer was inspected.
            let needed = self.layer;
            schedule.wait_until(|| schedule.inspected.0.load(Ordering::SeqCst) >= needed);
        }
        let units = total.div_ceil(align).min(units.max(1));
        let claimed = &schedule.claimed[self.layer * self.threads..][..self.threads];
        let done = &schedule.done[self.layer].0;
        // Own units first, in order; then the others', which they have not started.
        for owner in (0..self.threads).map(|i| (self.tid + i) % self.threads) {
            let (start, end) = (owner * units / self.threads, (owner + 1) * units / self.threads);
            loop {
                let unit = start + claimed[owner].0.fetch_add(1, Ordering::Relaxed);
                if unit >= end {
                    break;
                }
                f(split(total, units, unit, align));
                // SeqCst (a release, for the unit's writes, and the notify protocol's order).
                if done.fetch_add(1, Ordering::SeqCst) + 1 == units {
                    schedule.notify();
                }
            }
        }
        schedule.wait_until(|| done.load(Ordering::SeqCst) == units);
    }
}

/// Part `part` of `parts` nearly equal contiguous ranges of `0..total`. Boundaries fall on
/// multiples of `align` (except the end), so GEMM row shares stay whole tiles.
pub(crate) fn split(total: usize, parts: usize, part: usize, align: usize) -> Range<usize> {
    let units = total.div_ceil(align);
    let bound = |p: usize| (units * p / parts * align).min(total);
    bound(part)..bound(part + 1)
}

/// The threads of one engine.
pub(crate) struct Team {
    threads: usize,
    /// `threads - 1` workers; `None` for a single thread.
    pool: Option<rayon::ThreadPool>,
    schedule: Schedule,
}

impl Team {
    /// A team of `threads` for passes of up to `layers` layers.
    pub(crate) fn new(threads: usize, layers: usize) -> Result<Self, EngineError> {
        if threads == 0 {
            return Err(EngineError::Threads);
        }
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads - 1)
                .thread_name(|i| format!("mobilenet-engine-{}", i + 1))
                .build()
                .map_err(|e| EngineError::ThreadPool(e.to_string()))?;
            Some(pool)
        } else {
            None
        };
        let counters = |n: usize| (0..n).map(|_| Counter::default()).collect();
        let schedule = Schedule {
            threads,
            claimed: counters(layers * threads),
            done: counters(layers),
            inspected: Counter::default(),
            gated: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        };
        Ok(Team {
            threads,
            pool,
            schedule,
        })
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `worker` on threads 1.. of the team and `main` on the calling thread (thread 0),
    /// and returns when all have finished. Both must go through the same layers, calling
    /// [`Work::for_each`] once per layer. With `gate = Some(first)` (the first layer of the
    /// pass), no thread starts layer `l + 1` before thread 0 has called [`Ctx::inspected`] for
    /// layer `l`. `main` may borrow mutably (it never leaves this thread).
    pub(crate) fn run<W, M>(&mut self, gate: Option<usize>, worker: W, main: M)
    where
        W: Fn(Ctx<'_>) + Sync,
        M: FnOnce(Ctx<'_>),
    {
        let Some(pool) = &self.pool else {
            main(Ctx {
                tid: 0,
                threads: 1,
                schedule: None,
            });
            return;
        };
        let schedule = &mut self.schedule;
        assert_eq!(schedule.threads, self.threads);
        for counter in schedule.claimed.iter_mut().chain(&mut schedule.done) {
            *counter.0.get_mut() = 0;
        }
        // Layers before the pass's first count as inspected.
        *schedule.inspected.0.get_mut() = gate.unwrap_or(0);
        *schedule.gated.get_mut() = gate.is_some();
        *schedule.poisoned.get_mut() = false;
        let schedule = &*schedule;
        let threads = self.threads;
        pool.in_place_scope(|scope| {
            for tid in 1..threads {
                let worker = &worker;
                // The pool has exactly `threads - 1` workers and a job only ends when every
                // layer is done, so no job waits behind another on the same worker.
                scope.spawn(move |_| {
                    let _guard = PoisonOnUnwind(schedule);
                    worker(Ctx {
                        tid,
                        threads,
                        schedule: Some(schedule),
                    });
                });
            }
            let _guard = PoisonOnUnwind(schedule);
            main(Ctx {
                tid: 0,
                threads,
                schedule: Some(schedule),
            });
        });
    }
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Team({} threads)", self.threads)
    }
}

/// A raw pointer that may cross threads. The engine's threads write disjoint parts of one
/// buffer and finish each layer before the next reads it; that discipline, not the type
/// system, is what makes sharing sound, and every dereference states it.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);

impl<T> SyncPtr<T> {
    /// The pointer. A method rather than `.0`, so closures capture the `Sync` wrapper instead
    /// of the bare pointer field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only dereferenced under the disjoint-write / per-layer discipline
// above.
unsafe impl<T> Send for SyncPtr<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for SyncPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_on_aligned_bounds() {
        for (total, parts, align) in [(49, 2, 14), (196, 2, 14), (5, 3, 1), (1, 2, 1), (100, 1, 7)] {
            let ranges: Vec<_> = (0..parts).map(|p| split(total, parts, p, align)).collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[parts - 1].end, total);
            for w in ranges.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].end % align == 0 || w[0].end == total);
            }
        }
        assert_eq!(split(196, 2, 0, 14), 0..98);
    }

    /// Runs `layers` layers of `total` items on a team; returns how often each item ran and
    /// how many items each thread ran. Thread `delay` starts 20 ms late.
    fn run_items(
        team: &mut Team,
        layers: usize,
        total: usize,
        delay: Option<usize>,
    ) -> (Vec<usize>, Vec<usize>) {
        let hits: Vec<Vec<AtomicUsize>> = (0..layers)
            .map(|_| (0..total).map(|_| AtomicUsize::new(0)).collect())
            .collect();
        let by_thread: Vec<AtomicUsize> = (0..team.threads()).map(|_| AtomicUsize::new(0)).collect();
        let body = |ctx: Ctx<'_>| {
            if delay == Some(ctx.tid) {
                std::thread::sleep(Duration::from_millis(20));
            }
            for (layer, hits) in hits.iter().enumerate() {
                ctx.layer(layer).for_each(total, 3, |range| {
                    by_thread[ctx.tid].fetch_add(range.len(), Ordering::Relaxed);
                    for item in range {
                        hits[item].fetch_add(1, Ordering::Relaxed);
                    }
                });
                // Every item of this layer is done once `for_each` returns, on every thread.
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        };
        team.run(None, body, body);
        let hits = hits.iter().flatten().map(|h| h.load(Ordering::Relaxed)).collect();
        (
            hits,
            by_thread.iter().map(|n| n.load(Ordering::Relaxed)).collect(),
        )
    }

    #[test]
    fn every_unit_runs_once_and_layers_complete_in_order() {
        let mut team = Team::new(3, 5).unwrap();
        for _ in 0..3 {
            let (hits, _) = run_items(&mut team, 5, 100, None);
            assert!(hits.iter().all(|&n| n == 1));
        }
    }

    #[test]
    fn for_each_units_runs_every_item_once_in_at_most_that_many_units() {
        let mut team = Team::new(2, 4).unwrap();
        for (total, align, units) in [
            (49usize, 4usize, 2usize),
            (196, 4, 2),
            (14, 7, 2),
            (10, 4, 50),
            (0, 4, 2),
            (5, 1, 0),
        ] {
            let hits: Vec<AtomicUsize> = (0..total).map(|_| AtomicUsize::new(0)).collect();
            let calls = AtomicUsize::new(0);
            let body = |ctx: Ctx<'_>| {
                ctx.layer(0).for_each_units(total, align, units, |range| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    assert!(range.start.is_multiple_of(align));
                    for item in range {
                        hits[item].fetch_add(1, Ordering::Relaxed);
                    }
                });
            };
            team.run(None, body, body);
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{total} {align} {units}"
            );
            let calls = calls.load(Ordering::Relaxed);
            assert!(
                calls <= units.max(1) && calls <= total.div_ceil(align),
                "{total} {align} {units}: {calls}"
            );
        }
    }

    #[test]
    fn a_late_thread_is_not_waited_for() {
        let mut team = Team::new(2, 4).unwrap();
        for (late, prompt) in [(0, 1), (1, 0)] {
            let (hits, by_thread) = run_items(&mut team, 4, 40, Some(late));
            assert!(hits.iter().all(|&n| n == 1));
            // The prompt thread did every layer alone instead of waiting at each one.
            assert_eq!(by_thread[prompt], 4 * 40, "{by_thread:?}");
        }
    }

    #[test]
    fn a_panicking_thread_does_not_hang_the_others() {
        let mut team = Team::new(2, 1).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.run(
                None,
                |ctx| {
                    ctx.layer(0).for_each(4, 1, |_| panic!("worker fails"));
                    panic!("worker fails after the layer");
                },
                |ctx| {
                    // Lets the worker claim a unit first, then waits for it.
                    std::thread::sleep(SPIN * 20);
                    ctx.layer(0).for_each(4, 1, |_| std::thread::sleep(SPIN * 40));
                },
            );
        }));
        assert!(result.is_err());
    }
}
