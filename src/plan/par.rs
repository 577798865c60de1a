//! Data parallelism for the planner's per-image steps, on scoped threads.
//!
//! At 100k images each step waits on memory (every image's strings are separate heap
//! allocations), so a second core nearly halves it. Below [`MIN_PER_THREAD`] images per
//! thread the planner stays on the calling thread: spawning would cost more than it saves.
//! The output never depends on the number of threads: each thread fills its own contiguous
//! part of the output, in place.

use std::num::NonZeroUsize;
use std::thread;

/// Fewest images worth a thread of their own.
pub const MIN_PER_THREAD: usize = 16_384;
/// Most threads the planner uses (more only adds contention on memory bandwidth).
const MAX_THREADS: usize = 4;

/// How many threads to use for `n` items: 1 for small inventories, else up to the number
/// of CPUs this process may use (capped at [`MAX_THREADS`]).
pub fn threads_for(n: usize) -> usize {
    let cpus = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (n / MIN_PER_THREAD).clamp(1, cpus.min(MAX_THREADS))
}

/// Set `out[i] = f(i)` for every `i`, on up to `threads` threads (the caller's included).
pub fn fill<U, F>(out: &mut [U], threads: usize, f: F)
where
    U: Send,
    F: Fn(usize) -> U + Sync,
{
    let chunk = out.len().div_ceil(threads.max(1)).max(1);
    if chunk >= out.len() {
        out.iter_mut().enumerate().for_each(|(i, o)| *o = f(i));
        return;
    }
    let f = &f;
    thread::scope(|s| {
        let mut parts = out.chunks_mut(chunk).enumerate();
        let first = parts.next();
        for (k, part) in parts {
            s.spawn(move || {
                let base = k * chunk;
                part.iter_mut()
                    .enumerate()
                    .for_each(|(j, o)| *o = f(base + j));
            });
        }
        if let Some((_, part)) = first {
            part.iter_mut().enumerate().for_each(|(j, o)| *o = f(j));
        }
    });
}

/// Split two equally long slices into the same contiguous parts, run `f(base, a, b)` on
/// each part on up to `threads` threads (the caller's included), and return the results in
/// part order. `base` is the index of the part's first item.
pub fn chunks2<A, B, R, F>(a: &mut [A], b: &mut [B], threads: usize, f: F) -> Vec<R>
where
    A: Send,
    B: Send,
    R: Send,
    F: Fn(usize, &mut [A], &mut [B]) -> R + Sync,
{
    assert_eq!(a.len(), b.len(), "chunks2 takes slices of one length");
    let chunk = a.len().div_ceil(threads.max(1)).max(1);
    if chunk >= a.len() {
        return vec![f(0, a, b)];
    }
    let f = &f;
    thread::scope(|s| {
        let mut parts = a.chunks_mut(chunk).zip(b.chunks_mut(chunk)).enumerate();
        let first = parts.next();
        let spawned: Vec<_> = parts
            .map(|(k, (a, b))| s.spawn(move || f(k * chunk, a, b)))
            .collect();
        let mut results = Vec::with_capacity(spawned.len() + 1);
        results.extend(first.map(|(_, (a, b))| f(0, a, b)));
        for handle in spawned {
            match handle.join() {
                Ok(r) => results.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_gives_the_same_output_on_any_number_of_threads() {
        let want: Vec<usize> = (0..1001).map(|i| i * i).collect();
        for threads in [0, 1, 2, 3, 7, 2000] {
            let mut out = vec![0usize; 1001];
            fill(&mut out, threads, |i| i * i);
            assert_eq!(out, want, "{threads} threads");
        }
        let mut empty: Vec<usize> = Vec::new();
        fill(&mut empty, 4, |i| i);
        assert!(empty.is_empty());
    }

    #[test]
    fn chunks2_covers_both_slices_once_in_order() {
        for threads in [1, 2, 3, 64] {
            let mut a = vec![0usize; 100];
            let mut b = vec![0usize; 100];
            let bases = chunks2(&mut a, &mut b, threads, |base, a, b| {
                for (j, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
                    *x += base + j;
                    *y += 1;
                }
                base
            });
            assert_eq!(a, (0..100).collect::<Vec<_>>(), "{threads} threads");
            assert_eq!(b, vec![1; 100]);
            assert!(bases.windows(2).all(|w| w[0] < w[1]), "{bases:?}");
            assert_eq!(bases[0], 0);
        }
    }

    #[test]
    fn small_inventories_stay_on_one_thread() {
        assert_eq!(threads_for(0), 1);
        assert_eq!(threads_for(MIN_PER_THREAD - 1), 1);
        assert!(threads_for(100 * MIN_PER_THREAD) <= MAX_THREADS);
    }
}
