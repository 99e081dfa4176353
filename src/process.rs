//! Process-wide settings, applied only when the application asks: the library itself never
//! changes state that other code in the process shares. The `gss` binary calls [`configure`]
//! first thing; a library user who wants the same behaviour calls it once at start-up, before
//! any model is loaded and before other threads start.
//!
//! What it changes, and why:
//! - tract's kernel family (`TRACT_CPU_ISA`, a tract knob read once per process): the choice
//!   `gss tune` measured on this CPU model and cached (see [`crate::engine::cpu::isa`]). An
//!   explicit `TRACT_CPU_ISA` in the environment wins; `GSS_ISA_CACHE=off` skips the cache.
//! - glibc's allocator thresholds (`mallopt`): tract's intermediate tensors are megabytes, and
//!   above the default mmap threshold each one is a fresh mmap that page-faults on every run,
//!   which made frame times bimodal across processes (up to 2.5x apart).

use std::sync::OnceLock;

use crate::engine::cpu::isa::{self, IsaSource};

/// What [`configure`] applied.
#[derive(Debug, Clone)]
pub struct Configured {
    /// Where tract's kernel family came from.
    pub tract_isa: IsaSource,
    /// Whether the allocator thresholds were raised (glibc on Linux only).
    pub allocator: bool,
}

/// Applies the process-wide settings once; later calls return what the first one applied.
pub fn configure() -> &'static Configured {
    static DONE: OnceLock<Configured> = OnceLock::new();
    DONE.get_or_init(|| {
        let tract_isa = isa::apply_cached_choice();
        match &tract_isa {
            IsaSource::Environment(v) => {
                log::info!("tract kernels: TRACT_CPU_ISA={v:?} from the environment")
            }
            IsaSource::Measured(c) => log::info!(
                "tract kernels: {} (measured by `gss tune` on this CPU)",
                if c.isa.is_empty() {
                    "tract's default"
                } else {
                    c.isa.as_str()
                }
            ),
            IsaSource::Default => log::debug!(
                "tract kernels: tract's default (run `gss tune` to measure the alternatives on \
                 this CPU)"
            ),
        }
        Configured {
            tract_isa,
            allocator: keep_large_buffers(),
        }
    })
}

/// Keeps glibc from returning large buffers to the OS between frames.
fn keep_large_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator thresholds; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        }
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn configure_applies_once() {
        let first = super::configure() as *const _;
        assert_eq!(first, super::configure() as *const _);
        assert_eq!(
            super::configure().allocator,
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
    }
}
