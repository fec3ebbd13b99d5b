//! Threads: one rayon dispatch per forward pass, a spin barrier between layers.
//!
//! A rayon `join` per layer costs a wake-up and a steal per layer; on the 0.25-MobileNet-128
//! a whole layer takes 5-20 us, so that overhead would eat the gain of a second core. Instead
//! every thread runs the whole layer loop once, each on its static share of every layer (rows
//! of the output, or column panels of a GEMM), and waits on a [`SpinBarrier`] between layers.
//! The calling thread takes share 0 itself (`in_place_scope`), so the dedicated pool only holds
//! `threads - 1` workers and a single-threaded engine never touches rayon at all.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::EngineError;

/// Spins this many times before yielding: a layer boundary normally arrives within a few
/// microseconds, but on a shared machine the other thread may have been descheduled.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// A reusable barrier for the engine's threads that never sleeps in the kernel.
pub(crate) struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Blocks until all threads have called `wait` for this generation. Everything a thread
    /// wrote before `wait` is visible to every thread after it (release on arrival, acquire on
    /// the generation change).
    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // Reset before publishing the new generation, so a thread that races ahead into
            // the next `wait` counts from zero.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation
                .store(generation.wrapping_add(1), Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("another engine thread panicked");
            }
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Marks the barrier poisoned if its thread unwinds, so the others stop waiting for it.
struct PoisonOnUnwind<'a>(&'a SpinBarrier);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// What one thread knows about the team while running a forward pass.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) tid: usize,
    pub(crate) threads: usize,
    barrier: Option<&'a SpinBarrier>,
}

impl Ctx<'_> {
    /// Waits until every thread reaches the same point (a no-op with one thread).
    pub(crate) fn sync(&self) {
        if let Some(barrier) = self.barrier {
            barrier.wait();
        }
    }

    /// This thread's share of `0..total`, in whole units of `align` where possible.
    pub(crate) fn share(&self, total: usize, align: usize) -> Range<usize> {
        split(total, self.threads, self.tid, align)
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
}

impl Team {
    pub(crate) fn new(threads: usize) -> Result<Self, EngineError> {
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
        Ok(Team { threads, pool })
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `worker` on threads 1.. of the team and `main` on the calling thread (thread 0),
    /// and returns when all have finished. Both must execute the same sequence of
    /// [`Ctx::sync`] calls. `main` may borrow mutably (it never leaves this thread).
    pub(crate) fn run<W, M>(&self, worker: W, main: M)
    where
        W: Fn(Ctx<'_>) + Sync,
        M: FnOnce(Ctx<'_>),
    {
        let Some(pool) = &self.pool else {
            main(Ctx {
                tid: 0,
                threads: 1,
                barrier: None,
            });
            return;
        };
        let barrier = SpinBarrier::new(self.threads);
        let threads = self.threads;
        pool.in_place_scope(|scope| {
            for tid in 1..threads {
                let (worker, barrier) = (&worker, &barrier);
                // The pool has exactly `threads - 1` workers and each job blocks in the barrier
                // until all have started, so every job gets its own worker.
                scope.spawn(move |_| {
                    let _guard = PoisonOnUnwind(barrier);
                    worker(Ctx {
                        tid,
                        threads,
                        barrier: Some(barrier),
                    });
                });
            }
            let _guard = PoisonOnUnwind(&barrier);
            main(Ctx {
                tid: 0,
                threads,
                barrier: Some(&barrier),
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
/// buffer and separate each layer with a barrier; that discipline, not the type system, is
/// what makes sharing sound, and every dereference states it.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);

impl<T> SyncPtr<T> {
    /// The pointer. A method rather than `.0`, so closures capture the `Sync` wrapper instead
    /// of the bare pointer field.
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only dereferenced under the disjoint-write / barrier discipline above.
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

    #[test]
    fn barrier_orders_writes() {
        let team = Team::new(3).unwrap();
        let cells: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        let body = |ctx: Ctx<'_>| {
            for round in 1..100 {
                cells[ctx.tid].store(round, Ordering::Relaxed);
                ctx.sync();
                for cell in &cells {
                    assert_eq!(cell.load(Ordering::Relaxed), round);
                }
                ctx.sync();
            }
        };
        team.run(body, body);
    }
}
