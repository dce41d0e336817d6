//! Independent runs on every core, their results handed back in input order.
//!
//! `sweep` and `seeds` run one world per seed; worlds share nothing, so
//! seeds run on `threads` scoped threads, each taking the next seed from a
//! shared counter. Results reach the caller on the calling thread, one at a
//! time and in the order of the input, as soon as every earlier one is in:
//! what a batch prints is the same for every thread count, and a long batch
//! still prints as it goes.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// The default thread count: the cores this process may use (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Runs `work` on every item on `threads` threads (at least one, at most one
/// per item) and hands each result to `sink` on the calling thread, in the
/// order of `items`.
///
/// The first error, from `work` (in input order) or from `sink`, stops the
/// batch: no further item starts, and the error is returned once the
/// threads that are running finish their current item.
pub fn ordered<I, R, E, W, S>(items: &[I], threads: usize, work: W, mut sink: S) -> Result<(), E>
where
    I: Sync,
    R: Send,
    E: Send,
    W: Fn(&I) -> Result<R, E> + Sync,
    S: FnMut(R) -> Result<(), E>,
{
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        for item in items {
            sink(work(item)?)?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<R, E>)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, work) = (&next, &stop, &work);
            scope.spawn(move || {
                // At most one pass over the items: each index is taken once.
                for _ in 0..items.len() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        break;
                    };
                    if tx.send((i, work(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Result<R, E>> = BTreeMap::new();
        let mut due = 0;
        let mut outcome = Ok(());
        // Every message is one item's result: at most `items.len()` of them.
        for (i, r) in rx.iter().take(items.len()) {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&due) {
                due += 1;
                if let Err(e) = r.and_then(&mut sink) {
                    outcome = Err(e);
                    break;
                }
            }
            if outcome.is_err() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_input_order_for_every_thread_count() {
        let items: Vec<u64> = (0..40).collect();
        for threads in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            let r: Result<(), ()> = ordered(
                &items,
                threads,
                |&x| {
                    // Uneven work, so later items often finish first.
                    std::thread::sleep(std::time::Duration::from_micros((40 - x) * 20));
                    Ok(x * 2)
                },
                |y| {
                    seen.push(y);
                    Ok(())
                },
            );
            assert!(r.is_ok());
            assert_eq!(seen, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_in_input_order_stops_the_batch() {
        let items: Vec<u64> = (0..20).collect();
        let mut seen = Vec::new();
        let r = ordered(
            &items,
            4,
            |&x| if x == 5 { Err(x) } else { Ok(x) },
            |y| {
                seen.push(y);
                Ok(())
            },
        );
        assert_eq!(r, Err(5));
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }
}
