//! Where the vectorised kernels get their instruction set: [`dispatch`] runs a
//! [`Kernel`] compiled for AVX-512, for AVX2 with FMA, or for the baseline CPU,
//! whichever this CPU has (checked at run time), so each kernel is written once; and
//! the cache hints (prefetches) the kernels give.

/// A piece of work to compile once per instruction set.
pub(crate) trait Kernel {
    type Output;

    /// The work, with tiles of `T` doubles kept in registers (64 with AVX-512: eight
    /// registers; 32 with AVX2; 16 otherwise). Implementations are `#[inline(always)]`,
    /// so that they are compiled into [`dispatch`]'s per-instruction-set functions.
    fn run<const T: usize>(self) -> Self::Output;
}

/// Run `kernel` compiled for the widest instruction set this CPU has (or, with
/// `MLP_SIMD=avx2` or `MLP_SIMD=baseline` in the environment, no wider than that: to
/// run and measure the other paths on a machine that has them all).
pub(crate) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    match *LEVEL {
        // SAFETY: LEVEL only names instruction sets the CPU has.
        Level::Avx512 => return unsafe { run_avx512(kernel) },
        // SAFETY: as above.
        Level::Avx2 => return unsafe { run_avx2(kernel) },
        Level::Baseline => {}
    }
    kernel.run::<16>()
}

/// [`dispatch`] for work without tiles of its own: `f()` compiled for the widest
/// instruction set. `f` must be `#[inline(always)]`, so that its body is compiled into
/// each per-instruction-set function (a closure left apart is compiled for the
/// baseline CPU).
pub(crate) fn dispatch_fn<R>(f: impl FnOnce() -> R) -> R {
    struct Call<F>(F);
    impl<R, F: FnOnce() -> R> Kernel for Call<F> {
        type Output = R;
        #[inline(always)]
        fn run<const T: usize>(self) -> R {
            (self.0)()
        }
    }
    dispatch(Call(f))
}

/// [`dispatch`], but with AVX2 where the CPU also has AVX-512: for the sparse gathers
/// and scatters, which load a row of 32 or 64 doubles per stored entry. On Zen 4 (whose
/// 512-bit operations take two 256-bit passes) their AVX2 versions ran faster, cycles
/// per entry for MNIST-like rows: 7.2 against 8.4 (`S W1` on 32 columns), 14.1 against
/// 15.5 (on 64), 10.5 against 11.2 (`S^T dZ1` on 32). Every path gives the same
/// numbers. Tiles are at most 32 wide here, and those kernels are written for that.
pub(crate) fn dispatch_gather<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if *LEVEL >= Level::Avx2 {
        // SAFETY: LEVEL only names instruction sets the CPU has.
        return unsafe { run_avx2(kernel) };
    }
    kernel.run::<16>()
}

/// Whether [`dispatch`] runs kernels with fused multiply-add instructions.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_fma() -> bool {
    *LEVEL >= Level::Avx2
}

/// The instruction sets [`dispatch`] chooses from.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Baseline,
    Avx2,
    Avx512,
}

/// The widest instruction set this CPU has, capped by `MLP_SIMD` if set.
#[cfg(target_arch = "x86_64")]
static LEVEL: std::sync::LazyLock<Level> = std::sync::LazyLock::new(|| {
    let cpu = if std::arch::is_x86_feature_detected!("avx512f") {
        Level::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        Level::Avx2
    } else {
        Level::Baseline
    };
    let cap = match std::env::var("MLP_SIMD").as_deref().map(str::trim) {
        Ok("baseline") => Level::Baseline,
        Ok("avx2") => Level::Avx2,
        _ => Level::Avx512,
    };
    cpu.min(cap)
});

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

/// A pointer into each 64-byte line `v` spans (from its first element on).
#[cfg(target_arch = "x86_64")]
fn lines<T>(v: &[T]) -> impl Iterator<Item = *const i8> + '_ {
    v.iter().step_by((64 / size_of::<T>().max(1)).max(1)).map(|x| (x as *const T).cast())
}

/// Ask the CPU to bring `v` into the caches, without waiting.
#[inline(always)]
pub(crate) fn prefetch_read<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in lines(v) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch does not access memory architecturally; the address is
        // inside `v` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Ask the CPU to bring `v` into this core's cache for writing (`PREFETCHW`: the line
/// arrives owned, so the write that follows does not wait for the other core to let go
/// of it), on CPUs that have the instruction; nothing elsewhere. Inline assembly: the
/// `prfchw` target feature is not stable in Rust.
#[inline(always)]
pub(crate) fn prefetch_write<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    if *HAS_PREFETCHW {
        for line in lines(v) {
            // SAFETY: a prefetch does not access memory architecturally, and the CPU
            // has the instruction (CPUID 8000_0001h ECX bit 8)
            unsafe {
                std::arch::asm!(
                    "prefetchw [{}]",
                    in(reg) line,
                    options(nostack, preserves_flags, readonly)
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(target_arch = "x86_64")]
static HAS_PREFETCHW: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| {
    use std::arch::x86_64::__cpuid;
    __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
});
