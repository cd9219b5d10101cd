//! The hidden layer's activation for the sparse kernel, vectorised: `exp` as a
//! polynomial the compiler turns into SIMD code (the C library's `exp` is a call per
//! element, about a tenth of a sparse training step for sigmoid).
//!
//! `exp(x) = 2^k exp(r)` with `k = round(x / ln 2)` and `|r| <= ln 2 / 2`; `exp(r)`
//! from its Taylor series to degree 13 (the next term is below 1e-17 relative). The
//! result is within one unit in the last place of the exact value (the tests compare
//! with the C library's on a million points). Each step is one rounding or one fused
//! multiply-add, so every instruction set gives the same doubles.

use super::simd::dispatch_fn;
use crate::model::Activation;

/// `1.5 * 2^52`: adding it rounds a double to an integer, left in the low bits.
const ROUND: f64 = 6755399441055744.0;
/// `ln 2` in two parts: `LN2_HI` has trailing zero bits, so `k * LN2_HI` is exact.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// Above this `exp` overflows; below `MIN_ARG` it is under `2^-1022` (given as 0).
const MAX_ARG: f64 = 709.782_712_893_384;
const MIN_ARG: f64 = -708.396_418_532_264_1;

/// `exp(x)` within one ulp for `x` in `[MIN_ARG, MAX_ARG]`; `inf` above, `0` below,
/// `NaN` for `NaN`.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    let mut v = [x];
    exp_lanes(&mut v);
    v[0]
}

/// [`exp`] of each of `N` values, step by step across all of them: the compiler keeps
/// the lanes in vector registers, and the polynomial's multiply-add chains of the
/// `N / 4` registers run interleaved (one value at a time, a chain of 13 dependent
/// multiply-adds left the arithmetic units waiting). The same operations per value as
/// for one value alone, so the same doubles.
#[inline(always)]
pub(crate) fn exp_lanes<const N: usize>(x: &mut [f64; N]) {
    // (NaN stays NaN through the clamp and the arithmetic)
    let mut k = [0.0; N];
    let mut r = [0.0; N];
    for i in 0..N {
        let xc = x[i].clamp(MIN_ARG, MAX_ARG);
        k[i] = xc.mul_add(std::f64::consts::LOG2_E, ROUND) - ROUND;
        r[i] = (-k[i]).mul_add(LN2_LO, (-k[i]).mul_add(LN2_HI, xc));
    }
    // 1/13!, ..., 1/2!, 1, 1 by Horner's rule
    let mut p: [f64; N] = [1.0 / 6_227_020_800.0; N];
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        for i in 0..N {
            p[i] = p[i].mul_add(r[i], c);
        }
    }
    for i in 0..N {
        // 2^k from k's bits (the exponent field is k + 1023), as 2^1023 * 2 for
        // k = 1024 (x near MAX_ARG), where 2^k itself would overflow
        let top = k[i] > 1023.0;
        let kk = if top { 1023.0 } else { k[i] };
        let scale = f64::from_bits(
            (kk + ROUND)
                .to_bits()
                .wrapping_sub(ROUND.to_bits())
                .wrapping_add(1023)
                .wrapping_shl(52),
        );
        let y = p[i] * scale;
        let y = if top { y * 2.0 } else { y };
        x[i] = if x[i] > MAX_ARG {
            f64::INFINITY
        } else if x[i] < MIN_ARG {
            0.0
        } else {
            y
        };
    }
}

/// `z = act(z + c + b)` element by element, with [`exp`] for sigmoid.
pub(crate) fn activate(act: Activation, z: &mut [f64], c: &[f64], b: &[f64]) {
    dispatch_fn(
        #[inline(always)]
        || activate_any(act, z, c, b),
    )
}

#[inline(always)]
fn activate_any(act: Activation, z: &mut [f64], c: &[f64], b: &[f64]) {
    match act {
        Activation::Sigmoid => {
            // 64 at a time through exp_lanes (a row of the problem set's hidden layer;
            // measured 5.7 cycles per value, against 6.4 for 16 at a time and 7.8 one
            // by one), the rest one by one
            const LANES: usize = 64;
            let n = z.len().min(c.len()).min(b.len());
            let whole = n - n % LANES;
            for ((z, c), b) in z[..whole]
                .chunks_exact_mut(LANES)
                .zip(c.chunks_exact(LANES))
                .zip(b.chunks_exact(LANES))
            {
                let mut t = [0.0; LANES];
                for i in 0..LANES {
                    t[i] = -(z[i] + c[i] + b[i]);
                }
                exp_lanes(&mut t);
                for i in 0..LANES {
                    z[i] = 1.0 / (1.0 + t[i]);
                }
            }
            for ((z, &c), &b) in z[whole..n].iter_mut().zip(&c[whole..n]).zip(&b[whole..n]) {
                *z = 1.0 / (1.0 + exp(-(*z + c + b)));
            }
        }
        Activation::Relu => {
            z.iter_mut().zip(c).zip(b).for_each(|((z, &c), &b)| *z = act.apply(*z + c + b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive doubles.
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_one_ulp_of_the_c_library() {
        let mut worst = (0, 0.0);
        let n = 1_000_000;
        for i in 0..n {
            // evenly over [-745, 710] and densely around 0, where sigmoid lives
            for x in
                [-745.0 + 1455.0 * i as f64 / n as f64, -40.0 + 80.0 * (i as f64 + 0.37) / n as f64]
            {
                let (got, want) = (exp(x), x.exp());
                if want >= f64::MIN_POSITIVE && want.is_finite() {
                    let d = ulps(got, want);
                    if d > worst.0 {
                        worst = (d, x);
                    }
                }
            }
        }
        assert!(worst.0 <= 1, "{} ulps at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_lanes_is_exp_in_every_lane() {
        // 64 lanes, as the activation runs it
        let mut x = [0.0; 64];
        for i in 0..10_000 {
            for (l, v) in x.iter_mut().enumerate() {
                *v = -745.0 + 1455.0 * ((i * 64 + l) as f64 / 640_000.0);
            }
            x[i % 64] = [f64::NAN, f64::INFINITY, -f64::INFINITY, 710.0, -0.0][i % 5];
            let want = x.map(exp);
            exp_lanes(&mut x);
            for (got, want) in x.iter().zip(want) {
                // (the same double; any NaN for NaN)
                assert!(got.to_bits() == want.to_bits() || got.is_nan() && want.is_nan());
            }
        }
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1.0), std::f64::consts::E);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(-750.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(MAX_ARG), MAX_ARG.exp());
    }

    #[test]
    fn activate_matches_the_activation_on_every_path() {
        let z: Vec<f64> = (0..67).map(|i| (i as f64 - 33.0) * 0.7).collect();
        let c: Vec<f64> = (0..67).map(|i| (i % 5) as f64 * 0.1).collect();
        let b: Vec<f64> = (0..67).map(|i| -(i % 3) as f64 * 0.2).collect();
        for act in [Activation::Sigmoid, Activation::Relu] {
            let mut fast = z.clone();
            activate(act, &mut fast, &c, &b);
            let mut any = z.clone();
            activate_any(act, &mut any, &c, &b);
            assert_eq!(fast, any, "{act}");
            for (i, &f) in fast.iter().enumerate() {
                let want = act.apply(z[i] + c[i] + b[i]);
                assert!(
                    (f - want).abs() <= 2.0 * f64::EPSILON * want.abs(),
                    "{act} {i}: {f} {want}"
                );
            }
        }
    }
}
