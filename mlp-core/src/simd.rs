//! Where the vectorised kernels get their instruction set: [`dispatch`] runs a
//! [`Kernel`] compiled for AVX-512, for AVX2 with FMA, or for the baseline CPU,
//! whichever this CPU has (checked at run time), so each kernel is written once.

/// A piece of work to compile once per instruction set.
pub(crate) trait Kernel {
    type Output;

    /// The work, with tiles of `T` doubles kept in registers (64 with AVX-512: eight
    /// registers; 32 with AVX2; 16 otherwise). Implementations are `#[inline(always)]`,
    /// so that they are compiled into [`dispatch`]'s per-instruction-set functions.
    fn run<const T: usize>(self) -> Self::Output;
}

/// Run `kernel` compiled for the widest instruction set this CPU has.
pub(crate) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { run_avx512(kernel) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            return unsafe { run_avx2(kernel) };
        }
    }
    kernel.run::<16>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<64>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<32>()
}
