//! Two-way fork-join for the training loop.
//!
//! One SGD step on MNIST is about 0.3 ms of work split in two halves twice.
//! `rayon::join` handed the second half to a pool thread that went to sleep between
//! steps, and waking it took longer than the half itself, so training ran on one core
//! (see docs/performance.md). While a training loop (or a large prediction) runs,
//! [`with_helper`] keeps one helper thread spinning for work instead; [`join`] gives it
//! the second closure and runs the first here. Without a helper (one core, or
//! `MLP_NUM_THREADS=1`), [`join`] runs both closures here, one after the other.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::thread;

/// A job handed to the helper: a type-erased pointer to a `Task`, run by `run_task`.
struct Slot {
    /// `*mut Task` of the job waiting to run, or null.
    job: AtomicPtr<Task>,
    /// Set when the helper should exit.
    stop: AtomicBool,
}

/// One handed-over closure: `call` runs it; the result (or panic) is written back
/// before `done` is set.
struct Task {
    call: unsafe fn(*mut ()),
    data: *mut (),
    done: AtomicBool,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

thread_local! {
    /// The helper's slot while this thread runs inside [`with_helper`].
    static HELPER: Cell<Option<&'static Slot>> = const { Cell::new(None) };
}

/// Run `f` with a spinning helper thread available to [`join`] on this thread.
pub(crate) fn with_helper<R>(f: impl FnOnce() -> R) -> R {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 || single_threaded() || HELPER.with(|h| h.get().is_some()) {
        return f();
    }
    let slot = Slot { job: AtomicPtr::new(std::ptr::null_mut()), stop: AtomicBool::new(false) };
    thread::scope(|scope| {
        let slot = &slot;
        scope.spawn(move || helper_loop(slot));
        // SAFETY: the reference is only reachable through HELPER, which is reset before
        // this scope ends (the guard below), and the scope outlives every use.
        let static_slot: &'static Slot = unsafe { &*(slot as *const Slot) };
        HELPER.with(|h| h.set(Some(static_slot)));
        struct Reset<'a>(&'a Slot);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                HELPER.with(|h| h.set(None));
                self.0.stop.store(true, Ordering::Release);
            }
        }
        let _reset = Reset(slot);
        f()
    })
}

fn helper_loop(slot: &Slot) {
    let mut idle: u32 = 0;
    loop {
        // read before swapping, so that an idle helper does not keep taking the cache
        // line away from the thread that publishes the next job
        let job = if slot.job.load(Ordering::Relaxed).is_null() {
            std::ptr::null_mut()
        } else {
            slot.job.swap(std::ptr::null_mut(), Ordering::Acquire)
        };
        if !job.is_null() {
            // SAFETY: `join` keeps the Task alive until `done` is set.
            let task = unsafe { &*job };
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (task.call)(task.data) }));
            if let Err(p) = result {
                *task.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
            task.done.store(true, Ordering::Release);
            idle = 0;
            continue;
        }
        if slot.stop.load(Ordering::Acquire) {
            return;
        }
        idle = idle.saturating_add(1);
        if idle < 64 {
            std::hint::spin_loop();
        } else {
            // between steps: give the core back (sched_yield) while still looking for
            // work every microsecond or so
            thread::yield_now();
        }
    }
}

/// [`join`] when `parallel`, else `a` then `b` on this thread.
pub(crate) fn join_if<A, B, RA, RB>(parallel: bool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if parallel { join(a, b) } else { (a(), b()) }
}

/// Run `a` and `b`, in parallel when a helper is available (`b` on the helper),
/// and return both results. A panic in either is propagated after both finished.
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let Some(slot) = HELPER.with(|h| h.get()) else {
        return (a(), b());
    };
    let mut b_state: (Option<B>, Option<RB>) = (Some(b), None);
    unsafe fn call<B: FnOnce() -> RB, RB>(data: *mut ()) {
        // SAFETY: `data` is the `(Option<B>, Option<RB>)` of the `join` below, which
        // waits for `done` before touching it again.
        let state = unsafe { &mut *(data as *mut (Option<B>, Option<RB>)) };
        if let Some(b) = state.0.take() {
            state.1 = Some(b());
        }
    }
    let task = Task {
        call: call::<B, RB>,
        data: &mut b_state as *mut (Option<B>, Option<RB>) as *mut (),
        done: AtomicBool::new(false),
        panic: Mutex::new(None),
    };
    let task_ptr = &task as *const Task as *mut Task;
    if slot
        .job
        .compare_exchange(std::ptr::null_mut(), task_ptr, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // a job of an enclosing join is still waiting for the helper: run both here
        let ra = a();
        let rb = b_state.0.take().map(|b| b()).expect("b not taken");
        return (ra, rb);
    }
    let ra = catch_unwind(AssertUnwindSafe(a));
    // wait for the helper; if it has not taken the job yet, take it back and run it here
    if slot
        .job
        .compare_exchange(task_ptr, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: the helper never saw the job; we are its only user.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (task.call)(task.data) }));
        if let Err(p) = result {
            *task.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        }
    } else {
        while !task.done.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
    }
    let ra = ra.unwrap_or_else(|p| resume_unwind(p));
    if let Some(p) = task.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        resume_unwind(p);
    }
    (ra, b_state.1.expect("the second closure ran"))
}

/// `MLP_NUM_THREADS=1` in the environment keeps all work on the calling thread.
fn single_threaded() -> bool {
    static SINGLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SINGLE.get_or_init(|| std::env::var("MLP_NUM_THREADS").is_ok_and(|v| v.trim() == "1"))
}

/// How many threads [`join`] can use from here.
pub(crate) fn threads() -> usize {
    if HELPER.with(|h| h.get().is_some()) { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_runs_both_with_and_without_a_helper() {
        let mut v = vec![0u64; 1000];
        let (a, b) = v.split_at_mut(500);
        let (x, y) =
            join(|| a.iter_mut().for_each(|e| *e = 1), || b.iter_mut().for_each(|e| *e = 2));
        assert_eq!((x, y), ((), ()));
        assert_eq!(v.iter().sum::<u64>(), 1500);
        let total = with_helper(|| {
            let mut sum = 0;
            for i in 0..10_000u64 {
                let (p, q) = join(|| i * 2, || i * 3);
                sum += p + q;
            }
            sum
        });
        assert_eq!(total, 5 * (0..10_000u64).sum::<u64>());
    }

    #[test]
    fn a_panic_on_the_helper_reaches_the_caller() {
        let r =
            std::panic::catch_unwind(|| with_helper(|| join(|| 1, || -> u32 { panic!("boom") })));
        assert!(r.is_err());
        // and the thread can use a helper again afterwards
        assert_eq!(with_helper(|| join(|| 1, || 2)), (1, 2));
    }
}
