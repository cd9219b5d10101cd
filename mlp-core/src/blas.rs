//! Which library multiplies ndarray's matrices, and with how many threads.
//!
//! With the `blas` feature (the default), every `.dot()` of a large enough `f64` matrix,
//! the library's and the notebooks' own code alike, is OpenBLAS's DGEMM (ndarray's `blas`
//! feature, Debian's libopenblas linked by this module). OpenBLAS starts as many threads
//! as the machine has cores; when this library is loaded it lowers that to the cores this
//! process may use ([`std::thread::available_parallelism`]: the CPU affinity and a
//! container's CPU limit), never more, so that a student's container with a limit of one
//! core does not run two threads fighting over it. `OPENBLAS_NUM_THREADS` lower than that
//! is kept. Without the feature ndarray uses matrixmultiply's portable kernels.
//!
//! OpenBLAS picks its kernels by the CPU's model. A model newer than its release (Debian's
//! 0.3.21 does not know Intel's Sapphire and Emerald Rapids, for one) gets the SSE3
//! `Prescott` kernels, whose different rounding changes the gradient check's printed
//! digits (W1's relative error 1.126756e-08, not the problem set's 1.126755e-08) and which
//! are several times slower. At load, before any product, the library then picks the
//! kernels the CPU's instruction set supports (`SkylakeX` with AVX-512, `Haswell` with
//! AVX2 and FMA), as `OPENBLAS_CORETYPE` would; a `OPENBLAS_CORETYPE` the user set is kept.

/// What multiplies matrices in this build, for a notebook's first output: for example
/// `OpenBLAS 0.3.21 (Zen kernels, 2 threads)` or `ndarray's own kernels (matrixmultiply;
/// built without the blas feature)`.
pub fn matrix_products() -> String {
    imp::describe()
}

/// A line for a notebook's first output: this library's version and what multiplies
/// its matrices.
pub fn build_info() -> String {
    format!("mlp-core {}: matrix products on {}", env!("CARGO_PKG_VERSION"), matrix_products())
}

#[cfg(feature = "blas")]
mod imp {
    use std::ffi::{CStr, c_char, c_int};

    // Debian's libopenblas (libopenblas-dev), linked here: it gives ndarray's cblas-sys its
    // `cblas_dgemm` as well (blas-src/openblas-src would link the same library, with 130
    // build-time packages that every kernel's rust-analyzer reads: docs/performance.md)
    #[link(name = "openblas")]
    unsafe extern "C" {
        fn openblas_get_config() -> *const c_char;
        fn openblas_get_corename() -> *const c_char;
        fn openblas_get_num_threads() -> c_int;
        fn openblas_set_num_threads(n: c_int);
        // DYNAMIC_ARCH's kernel table: quit forgets it, init chooses again (reading
        // OPENBLAS_CORETYPE), as at OpenBLAS's own start
        fn gotoblas_dynamic_quit();
        fn gotoblas_dynamic_init();
    }

    fn text(p: *const c_char) -> String {
        if p.is_null() {
            return String::new();
        }
        // SAFETY: OpenBLAS returns pointers to its own static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    pub fn describe() -> String {
        cap_threads();
        // SAFETY: plain queries of OpenBLAS's static configuration.
        let (config, core, threads) = unsafe {
            (text(openblas_get_config()), text(openblas_get_corename()), openblas_get_num_threads())
        };
        // "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64"
        let version = config.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let s = if threads == 1 { "" } else { "s" };
        format!("{version} ({core} kernels, {threads} thread{s})")
    }

    /// OpenBLAS's threads lowered to the cores this process may use.
    pub fn cap_threads() {
        let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
        let allowed = c_int::try_from(allowed).unwrap_or(c_int::MAX);
        // SAFETY: OpenBLAS's thread-count calls take and return a plain int.
        unsafe {
            if openblas_get_num_threads() > allowed {
                openblas_set_num_threads(allowed);
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[used]
    #[unsafe(link_section = ".init_array")]
    static CAP_ON_LOAD: extern "C" fn() = cap_on_load;

    #[cfg(target_os = "linux")]
    extern "C" fn cap_on_load() {
        choose_kernels();
        cap_threads();
    }

    /// The kernels this CPU supports, when OpenBLAS fell back to `Prescott` for a CPU model
    /// it does not know (see the module's note). Runs before any product (at load); on a
    /// later load (each notebook cell's library) OpenBLAS no longer says `Prescott`.
    #[cfg(target_os = "linux")]
    fn choose_kernels() {
        // SAFETY: a query of OpenBLAS's static configuration.
        if text(unsafe { openblas_get_corename() }) != "Prescott"
            || std::env::var_os("OPENBLAS_CORETYPE").is_some()
        {
            return;
        }
        let Some(core) = supported_core() else {
            return;
        };
        // SAFETY: this runs while the library loads, before its code or the notebook's has
        // started a thread of its own or multiplied a matrix; OpenBLAS's own threads read
        // no environment. The variable is removed again at once (child processes choose
        // for themselves).
        unsafe {
            std::env::set_var("OPENBLAS_CORETYPE", core);
            gotoblas_dynamic_quit();
            gotoblas_dynamic_init();
            std::env::remove_var("OPENBLAS_CORETYPE");
        }
    }

    /// The OpenBLAS kernels for this CPU's instruction set, if it has AVX2 at least.
    #[cfg(target_arch = "x86_64")]
    pub fn supported_core() -> Option<&'static str> {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
            Some("SkylakeX")
        } else if has!("avx2") && has!("fma") {
            Some("Haswell")
        } else {
            None
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn supported_core() -> Option<&'static str> {
        None
    }
}

#[cfg(not(feature = "blas"))]
mod imp {
    pub fn describe() -> String {
        "ndarray's own kernels (matrixmultiply; built without the blas feature)".to_string()
    }

    #[cfg(test)]
    pub fn supported_core() -> Option<&'static str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_library_and_its_threads() {
        let line = build_info();
        assert!(line.starts_with("mlp-core "), "{line}");
        if cfg!(feature = "blas") {
            assert!(line.contains("OpenBLAS 0."), "{line}");
            let allowed = std::thread::available_parallelism().unwrap().get();
            let threads: usize = line
                .rsplit(", ")
                .next()
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no thread count in {line}"));
            assert!(threads >= 1 && threads <= allowed, "{line}: {allowed} cores allowed");
            // a CPU with AVX2 gets kernels that use it, even one OpenBLAS does not know
            if imp::supported_core().is_some() {
                assert!(!line.contains("Prescott"), "{line}");
            }
        } else {
            assert!(line.contains("matrixmultiply"), "{line}");
        }
    }
}
