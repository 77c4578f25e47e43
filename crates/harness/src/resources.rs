//! Process resources: CPU time and peak resident memory, from `getrusage(RUSAGE_SELF)`.
//!
//! Wall time on a shared machine counts the time other processes held the cores; CPU time counts
//! only what this process (all its threads) consumed, so it is the steadier measure of work when
//! neighbours are busy. Both are recorded side by side.

/// CPU seconds (user + system) this process has used so far, over all its threads.
pub fn process_cpu_s() -> f64 {
    usage().map_or(f64::NAN, |u| tv(u.ru_utime) + tv(u.ru_stime))
}

/// The process's peak resident set size so far, in MiB (`NaN` where unavailable).
pub fn peak_rss_mib() -> f64 {
    // Linux reports ru_maxrss in KiB.
    usage().map_or(f64::NAN, |u| u.ru_maxrss as f64 / 1024.0)
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

fn usage() -> Option<libc::rusage> {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete `rusage` into the valid pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    // SAFETY: on success (rc == 0) the struct was fully written; it was zeroed before anyway.
    (rc == 0).then(|| unsafe { u.assume_init() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_grows_with_work_and_rss_is_positive() {
        // Busy work until the process clock has advanced 50 ms. Bounded by wall time, not work:
        // on a loaded machine this thread may get a small share of a core, but the clock must
        // still move (a clock stuck at zero fails).
        let a = super::process_cpu_s();
        let (mut x, mut b) = (0u64, a);
        let t = std::time::Instant::now();
        while b - a < 0.05 && t.elapsed().as_secs() < 60 {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            b = super::process_cpu_s();
        }
        std::hint::black_box(x);
        assert!(b - a >= 0.05, "busy work should cost CPU time: {a} -> {b} in {:?}", t.elapsed());
        assert!(super::peak_rss_mib() > 1.0);
    }
}
