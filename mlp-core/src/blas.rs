//! Which library multiplies ndarray's matrices, and with how many threads.
//!
//! With the `blas` feature (the default), every `.dot()` of a large enough `f64` matrix,
//! the library's and the notebooks' own code alike, is OpenBLAS's DGEMM (ndarray's `blas`
//! feature, Debian's libopenblas linked by openblas-src). OpenBLAS starts as many threads
//! as the machine has cores; when this library is loaded it lowers that to the cores this
//! process may use ([`std::thread::available_parallelism`]: the CPU affinity and a
//! container's CPU limit), never more, so that a student's container with a limit of one
//! core does not run two threads fighting over it. `OPENBLAS_NUM_THREADS` lower than that
//! is kept. Without the feature ndarray uses matrixmultiply's portable kernels.

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

    unsafe extern "C" {
        fn openblas_get_config() -> *const c_char;
        fn openblas_get_corename() -> *const c_char;
        fn openblas_get_num_threads() -> c_int;
        fn openblas_set_num_threads(n: c_int);
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
        cap_threads();
    }
}

#[cfg(not(feature = "blas"))]
mod imp {
    pub fn describe() -> String {
        "ndarray's own kernels (matrixmultiply; built without the blas feature)".to_string()
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
        } else {
            assert!(line.contains("matrixmultiply"), "{line}");
        }
    }
}
