//! Helper threads that take a share of a window's work within a
//! microsecond.
//!
//! A window of virtual time on a LAN holds a few wakeups, each costing tens
//! of microseconds (see [`crate::parallel`]). A thread pool whose idle
//! threads sleep takes about as long to wake one as the window's work
//! takes, so handing such a window out gains nothing. A crew's helpers
//! instead wait for work by spinning for a while ([`SPIN`]) after their
//! last share, then park; while a run keeps sending windows they stay
//! awake, and a hand-off is one atomic store each way.
//!
//! [`Crew::broadcast`] runs one closure on the calling thread and on every
//! helper that is awake, and returns once all of them have finished it;
//! the closure divides the work among them (each takes the next job from
//! a shared counter). A parked helper gets no share: waking it would cost
//! more than its share saves. It is woken for the windows that follow.
//! With more threads than cores, spinning helpers yield the core.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper spins for its next share before it parks.
pub const SPIN: Duration = Duration::from_millis(2);

/// Waiting for work (spinning).
const IDLE: u8 = 0;
/// Given a share: the task in the mailbox is valid until the helper is idle again.
const ASSIGNED: u8 = 1;
/// Parked: gets no share until woken.
const PARKED: u8 = 2;
/// Leaving.
const STOP: u8 = 3;

/// The closure being broadcast, its lifetime erased: valid while its
/// helper's state is [`ASSIGNED`] (see [`Crew::broadcast`]).
type Task = *const (dyn Fn() + Sync + 'static);

struct Helper {
    state: AtomicU8,
    /// Spins before each wait yields the core ([`relax`]).
    spins: u32,
    task: UnsafeCell<Option<Task>>,
    panicked: AtomicBool,
}

// SAFETY: `task` is written only by the broadcasting thread while the
// helper is not ASSIGNED, and read only by the helper while it is; the
// state's release/acquire pairs order those accesses.
unsafe impl Sync for Helper {}
unsafe impl Send for Helper {}

/// A calling thread and `threads - 1` helpers.
pub struct Crew {
    helpers: Vec<(Arc<Helper>, JoinHandle<()>)>,
}

impl Crew {
    /// A crew of `threads` threads in all (the caller is one of them), or
    /// fewer if the system refuses to start more.
    pub fn new(threads: usize) -> Self {
        let mut helpers = Vec::new();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // With a core each, spin (a yield is a system call); with more
        // threads than cores, yield at once, so the thread with work runs.
        let spins = if threads <= cores { 1 << 14 } else { 64 };
        for k in 1..threads.max(1) {
            let helper = Arc::new(Helper {
                state: AtomicU8::new(IDLE),
                spins,
                task: UnsafeCell::new(None),
                panicked: AtomicBool::new(false),
            });
            let mine = Arc::clone(&helper);
            let spawned = std::thread::Builder::new()
                .name(format!("rollcall-sim-{k}"))
                .spawn(move || serve(&mine));
            let Ok(handle) = spawned else {
                break;
            };
            helpers.push((helper, handle));
        }
        Self { helpers }
    }

    /// Threads in the crew, the caller included.
    pub fn threads(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `task` on the calling thread and on every helper that is
    /// awake, and returns when all have returned from it. Parked helpers
    /// are woken for later broadcasts. A panic in `task` on a helper is
    /// raised again here.
    pub fn broadcast(&self, task: &(dyn Fn() + Sync)) {
        // SAFETY: only the lifetime is erased. Every helper given the
        // pointer is waited for below (by the guard, on unwinding too)
        // before `task`'s borrow ends.
        let erased: Task = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Task>(task) };
        let mut guard = Wait {
            crew: self,
            assigned: Vec::with_capacity(self.helpers.len()),
        };
        for (k, (helper, handle)) in self.helpers.iter().enumerate() {
            if helper.state.load(Ordering::Acquire) == IDLE {
                // SAFETY: the helper is not ASSIGNED, so it does not read
                // the mailbox until the exchange below publishes this write.
                unsafe { *helper.task.get() = Some(erased) };
                if helper
                    .state
                    .compare_exchange(IDLE, ASSIGNED, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    guard.assigned.push(k);
                    continue;
                }
            }
            // Parked (before the load or since): woken for the next one.
            if helper
                .state
                .compare_exchange(PARKED, IDLE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                handle.thread().unpark();
            }
        }
        task();
        drop(guard);
        for (helper, _) in &self.helpers {
            if helper.panicked.swap(false, Ordering::AcqRel) {
                resume_unwind(Box::new("a crew helper panicked"));
            }
        }
    }
}

/// Waits for the assigned helpers to finish, also when the caller's own
/// share unwinds.
struct Wait<'a> {
    crew: &'a Crew,
    assigned: Vec<usize>,
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        for &k in &self.assigned {
            let helper = &self.crew.helpers[k].0;
            let mut spins = 0u32;
            while helper.state.load(Ordering::Acquire) == ASSIGNED {
                relax(&mut spins, helper.spins);
            }
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        for (helper, handle) in &self.helpers {
            helper.state.store(STOP, Ordering::Release);
            handle.thread().unpark();
        }
        for (_, handle) in self.helpers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Spins `limit` times, then yields the core on every call.
fn relax(spins: &mut u32, limit: u32) {
    *spins = spins.wrapping_add(1);
    if *spins < limit {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// A helper's loop: run each share, spin for the next, park after [`SPIN`].
fn serve(me: &Helper) {
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    loop {
        match me.state.load(Ordering::Acquire) {
            ASSIGNED => {
                // SAFETY: ASSIGNED was published after the mailbox was
                // written, and the broadcaster keeps the task alive until
                // this helper stores IDLE below.
                if let Some(task) = unsafe { *me.task.get() } {
                    let run = catch_unwind(AssertUnwindSafe(|| unsafe { (*task)() }));
                    if run.is_err() {
                        me.panicked.store(true, Ordering::Release);
                    }
                }
                me.state.store(IDLE, Ordering::Release);
                idle_since = Instant::now();
                spins = 0;
            }
            IDLE => {
                relax(&mut spins, me.spins);
                if spins.is_multiple_of(64) && idle_since.elapsed() >= SPIN {
                    let _ = me.state.compare_exchange(
                        IDLE,
                        PARKED,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
            }
            PARKED => {
                std::thread::park();
                idle_since = Instant::now();
                spins = 0;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_job_runs_once_for_every_crew_size() {
        for threads in [1, 2, 3, 8] {
            let crew = Crew::new(threads);
            for round in 0..200 {
                let jobs = round % 17;
                let next = AtomicUsize::new(0);
                let ran: Vec<AtomicUsize> = (0..jobs).map(|_| AtomicUsize::new(0)).collect();
                crew.broadcast(&|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = ran.get(k) else {
                        break;
                    };
                    slot.fetch_add(1, Ordering::Relaxed);
                });
                assert!(ran.iter().all(|r| r.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn parked_helpers_wake_for_later_work() {
        let crew = Crew::new(2);
        std::thread::sleep(SPIN * 3);
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        // The first broadcast finds the helper parked and wakes it; a
        // later one hands it a share.
        while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
            crew.broadcast(&|| {
                seen.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(Duration::from_millis(1));
            });
        }
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_panic_on_a_helper_reaches_the_caller() {
        let crew = Crew::new(2);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut raised = false;
        while !raised && Instant::now() < deadline {
            let caller = std::thread::current().id();
            raised = catch_unwind(AssertUnwindSafe(|| {
                crew.broadcast(&|| {
                    if std::thread::current().id() != caller {
                        panic!("a job failed");
                    }
                    std::thread::sleep(Duration::from_millis(1));
                })
            }))
            .is_err();
        }
        assert!(raised);
    }
}
