//! The event-loop thread's scheduler slice: the one place natsws calls the OS without a safe
//! wrapper.
//!
//! natsws serves every connection from one thread, so while that thread waits for a CPU every
//! client waits. Linux's fair scheduler (EEVDF, 6.6+) lets a woken task preempt the running
//! one only when its virtual deadline comes first, and a deadline lies one slice ahead: with
//! the default slice (0.75 ms, scaled up with the CPU count to at most 3 ms) a request that
//! arrives while other processes keep the cores busy waits out the rest of their slice. Since
//! 6.12 a `SCHED_OTHER` thread may ask for a shorter slice without privileges (`sched_runtime`
//! in `sched_setattr(2)`, clamped by the kernel to 0.1–100 ms), and a task with a shorter slice
//! preempts a longer one on wake-up. The loop asks for [`LOOP_SLICE`]: it runs in short bursts
//! and sleeps in `epoll_wait`, so its share of the CPU is unchanged; what changes is how soon
//! it runs once woken (BENCHMARKS.md: request/reply beside two busy loops).
//!
//! Only the calling thread's slice changes, and only when it runs under `SCHED_OTHER` with no
//! custom slice chosen by whoever started natsws (`chrt`, a service manager); its nice value is
//! kept. Kernels before 6.12 ignore the field: the call then changes nothing.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// The slice the event loop asks for: the shortest the kernel grants.
pub(crate) const LOOP_SLICE: Duration = Duration::from_micros(100);

/// What [`request_slice`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The thread's slice is now this long (as the kernel reads it back).
    Set(Duration),
    /// The thread runs under another policy or already has a slice of its own: left alone.
    Kept,
    /// The kernel took the request but reports no custom slice (before Linux 6.12).
    Unsupported,
}

/// Asks the scheduler to give the calling thread time slices of `slice`.
pub(crate) fn request_slice(slice: Duration) -> io::Result<Outcome> {
    imp::request_slice(slice)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::time::Duration;

    use super::Outcome;

    /// `struct sched_attr` as `SCHED_ATTR_SIZE_VER0` (include/uapi/linux/sched/types.h).
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
    }

    /// `SCHED_ATTR_SIZE_VER0`.
    const ATTR_SIZE: u32 = 48;

    /// `SCHED_OTHER` (include/uapi/linux/sched.h).
    const SCHED_OTHER: u32 = 0;

    /// The kernel's default slice is at most this long (`sysctl_sched_base_slice` scaled by
    /// `1 + ilog2(min(CPUs, 8))`); a longer one was chosen by whoever started natsws.
    const LONGEST_DEFAULT_SLICE_NS: u64 = 3_000_000;

    /// The kernel clamps a requested slice to this range (kernel/sched/syscalls.c,
    /// `__setscheduler_params`).
    const MIN_SLICE_NS: u64 = 100_000;
    const MAX_SLICE_NS: u64 = 100_000_000;

    const _: () = assert!(size_of::<SchedAttr>() == ATTR_SIZE as usize);

    fn get() -> io::Result<SchedAttr> {
        let mut attr = SchedAttr::default();
        // SAFETY: `attr` is a writable `sched_attr` of `ATTR_SIZE` bytes that outlives the
        // call; pid 0 is the calling thread and flags must be 0 (sched_getattr(2)). The integer
        // arguments are passed as `c_long`, the width `syscall(2)` reads them with.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0 as libc::c_long,
                std::ptr::from_mut(&mut attr),
                libc::c_long::from(ATTR_SIZE),
                0 as libc::c_long,
            )
        };
        if rc == 0 {
            Ok(attr)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn set(attr: &SchedAttr) -> io::Result<()> {
        // SAFETY: `attr` is a readable `sched_attr` whose `size` field holds its size and that
        // outlives the call; pid 0 is the calling thread and flags must be 0 (sched_setattr(2)).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_setattr,
                0 as libc::c_long,
                std::ptr::from_ref(attr),
                0 as libc::c_long,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn request_slice(slice: Duration) -> io::Result<Outcome> {
        let mut attr = get()?;
        // A slice longer than any default was set on purpose, so was a policy other than
        // SCHED_OTHER; both stay.
        if attr.sched_policy != SCHED_OTHER || attr.sched_runtime > LONGEST_DEFAULT_SLICE_NS {
            return Ok(Outcome::Kept);
        }
        attr.size = ATTR_SIZE;
        attr.sched_flags = 0;
        attr.sched_runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        set(&attr)?;
        let granted = get()?.sched_runtime;
        if granted == attr.sched_runtime.clamp(MIN_SLICE_NS, MAX_SLICE_NS) {
            Ok(Outcome::Set(Duration::from_nanos(granted)))
        } else {
            Ok(Outcome::Unsupported)
        }
    }

    #[cfg(test)]
    pub(super) fn current_slice() -> io::Result<Duration> {
        get().map(|a| Duration::from_nanos(a.sched_runtime))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::time::Duration;

    use super::Outcome;

    pub(super) fn request_slice(_slice: Duration) -> io::Result<Outcome> {
        Ok(Outcome::Unsupported)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The kernel's clamp of a requested slice (kernel/sched/syscalls.c
    /// `__setscheduler_params`): 0.1 ms to 100 ms.
    fn clamped(slice: Duration) -> Duration {
        slice.clamp(Duration::from_micros(100), Duration::from_millis(100))
    }

    /// Each request on a fresh thread, checked against what the kernel reads back; kernels
    /// without custom slices report `Unsupported` and keep their slice.
    #[test]
    fn the_kernel_reads_back_the_slice_asked_for() {
        for micros in [100, 250, 1_000, 2_500] {
            let slice = Duration::from_micros(micros);
            let (outcome, read_back) = std::thread::spawn(move || {
                let outcome = request_slice(slice).expect("sched_setattr");
                (outcome, imp::current_slice().expect("sched_getattr"))
            })
            .join()
            .expect("thread");
            match outcome {
                Outcome::Set(set) => {
                    assert_eq!(set, clamped(slice));
                    assert_eq!(read_back, set);
                }
                Outcome::Unsupported => {}
                Outcome::Kept => panic!("a fresh SCHED_OTHER thread's slice was kept"),
            }
        }
    }

    /// A slice longer than any default was chosen on purpose and is not shortened.
    #[test]
    fn a_long_slice_set_from_outside_is_kept() {
        std::thread::spawn(|| {
            if request_slice(Duration::from_millis(20)).expect("set") == Outcome::Unsupported {
                return;
            }
            assert_eq!(request_slice(LOOP_SLICE).expect("again"), Outcome::Kept);
            assert_eq!(
                imp::current_slice().expect("get"),
                Duration::from_millis(20)
            );
        })
        .join()
        .expect("thread");
    }
}
