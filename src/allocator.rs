//! The allocator settings of the process: the binary installs mimalloc as
//! its global allocator, mimalloc also replaces C's `malloc` (feature
//! `override` of libmimalloc-sys: librdkafka's allocations), and `main`
//! calls [`tune`] first thing (the minimal bridge of the benchmark does the
//! same, so that comparisons with it measure code, not the allocator).
//!
//! - **Purge at once** (`mi_option_purge_delay` 0, mimalloc's default is
//!   10 ms): freed memory goes back to the OS immediately, so a burst of
//!   connections does not leave the process large (scripts/bench.sh: the
//!   default kept peak RSS ~25 MiB higher under a burst, at no measurable
//!   CPU cost; the madvise calls are a few per thousand deliveries).
//! - **No transparent huge pages** (`prctl(PR_SET_THP_DISABLE)`): mimalloc
//!   commits its arena eagerly on Linux, and where THP is available a touched
//!   byte can bring in a whole 2 MiB page. Measured (docs/performance.md):
//!   9 MiB of the idle RSS and 8-17 MiB of the steady RSS under load. This
//!   one is set before `main`, before mimalloc's own start-up allocates its
//!   arena: set in `main`, the first two huge pages were already in.
//!
//! `MIMALLOC_PURGE_DELAY` and `MIMALLOC_ALLOW_THP` in the environment still
//! win.

/// mimalloc's `mi_option_purge_delay` (index 15 in mimalloc.h, v2 and v3;
/// the Rust bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the purge setting; call first thing in `main` (THP is already
/// off by then, see [`THP_OFF`]).
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide option; mimalloc documents it as
        // callable at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

/// Turns transparent huge pages off for this process, unless
/// `MIMALLOC_ALLOW_THP` is set. Runs from `.init_array` with a priority, so
/// before the constructors without one, mimalloc's among them (the same
/// mechanism std uses to capture `argv`). It only reads the environment and
/// makes one system call: nothing of Rust's runtime is needed yet.
#[cfg(target_os = "linux")]
extern "C" fn thp_off() {
    // SAFETY: getenv with a NUL-terminated name, before any thread exists;
    // PR_SET_THP_DISABLE takes plain integers and only sets a flag of this
    // process (inherited by its children). A failure (an old kernel) leaves
    // THP as it was, which is harmless.
    unsafe {
        if libc::getenv(c"MIMALLOC_ALLOW_THP".as_ptr()).is_null() {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

/// See [`thp_off`]. Every binary linking this crate gets it, the tools'
/// minimal bridge too.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00099")]
pub(crate) static THP_OFF: extern "C" fn() = thp_off;
