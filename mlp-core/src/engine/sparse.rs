//! Inputs that are mostly one value per column, stored as that value plus the entries
//! that differ from it. The products a training step needs, computed from them, are in
//! `gather.rs`.
//!
//! MNIST with the mean image subtracted is such an input: a background pixel (about
//! 81% of them) holds `0 - mean[k]`, the same value in every image. Writing
//! `X = S + 1 c^T`, with `c[k]` the most common value of column `k` and `S` sparse
//! (about 150 of 784 entries per MNIST row), the two big products of a step become
//!
//! - `X W1 = S W1 + 1 (c W1)`: a sparse product plus one row vector, and
//! - `X^T dZ = S^T dZ + c (1^T dZ) = S^T dZ + c db1^T`, where `db1 = 1^T dZ` is a
//!   gradient the step computes anyway,
//!
//! about a fifth of the dense work. The results equal the dense ones up to rounding:
//! each entry of `S` is `x - c[k]` rounded once, and the sums run in another order
//! (each a chain of fused multiply-adds in a fixed order, so the results do not depend
//! on the thread count or the instruction set).

use ndarray::ArrayView2;

use super::simd::prefetch_read;

/// Rows sampled (evenly spaced) to choose the column values and estimate the density.
const SAMPLE_ROWS: usize = 1024;

/// `X = S + 1 c^T`: the column values `c` and the rows of `S` (compressed sparse rows,
/// columns ascending within a row).
#[derive(Clone, Debug)]
pub(crate) struct OffsetSparse {
    /// The columns with `c[k] != 0`, and those values.
    pub(super) offset_cols: Vec<u32>,
    pub(super) offset_vals: Vec<f64>,
    /// `c`, `(D,)`.
    pub(super) offset: Vec<f64>,
    /// Row `i` of `S` is entries `bounds[i].0..bounds[i].1` of `cols`/`vals`.
    pub(super) bounds: Vec<(usize, usize)>,
    pub(super) cols: Vec<u32>,
    pub(super) vals: Vec<f64>,
}

impl OffsetSparse {
    /// The most common value of each column of `x` (on a sample of its rows: ties go
    /// to the smallest), and the fraction of entries that differ from it there: what
    /// the sparse form would store.
    pub(crate) fn survey(x: ArrayView2<f64>) -> (Vec<f64>, f64) {
        let (n, d) = x.dim();
        let step = n.div_ceil(SAMPLE_ROWS).max(1);
        let rows = n.div_ceil(step);
        // the sample column by column, for each column's mode
        let mut columns = vec![0.0; rows * d];
        for (r, row) in x.rows().into_iter().step_by(step).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                columns[k * rows + r] = v;
            }
        }
        let mut kept = 0;
        let mut offset = vec![0.0; d];
        for (column, c) in columns.chunks_mut(rows.max(1)).zip(&mut offset) {
            let (best, best_len) = mode(column);
            *c = best;
            kept += best_len;
        }
        let density = if rows * d == 0 { 1.0 } else { 1.0 - kept as f64 / (rows * d) as f64 };
        (offset, density)
    }

    /// The sparse form of `x` with column values `offset` and the `density` that
    /// [`Self::survey`] estimated (only to size the storage).
    /// Built in two halves on two threads when a helper is available.
    pub(crate) fn new(x: ArrayView2<f64>, offset: Vec<f64>, density: f64) -> Self {
        let (n, d) = x.dim();
        debug_assert_eq!(offset.len(), d);
        let split = if n >= 2 && super::par::threads() >= 2 { n / 2 } else { n };
        // Each half writes its entries straight into its own region of the storage,
        // sized from the estimate with a margin (plus a row, so a row always fits once
        // it is started). A half that does not fit is built again with room for
        // everything; the space a half leaves unused is never touched, so it costs
        // address space, not memory.
        let mut fraction = (density * 1.1 + 0.01).min(1.0);
        loop {
            let room = |rows: usize| (rows as f64 * d as f64 * fraction) as usize + d;
            let (room0, room1) = (room(split), room(n - split));
            let mut cols = vec![0u32; room0 + room1];
            let mut vals = vec![0.0; room0 + room1];
            let mut bounds = vec![(0, 0); n];
            let (x0, x1) = x.split_at(ndarray::Axis(0), split);
            let (c0, c1) = cols.split_at_mut(room0);
            let (v0, v1) = vals.split_at_mut(room0);
            let (e0, e1) = bounds.split_at_mut(split);
            let fits = if split < n {
                let (a, b) = super::par::join(
                    || compact_rows(x0, &offset, c0, v0, e0, 0),
                    || compact_rows(x1, &offset, c1, v1, e1, room0),
                );
                a && b
            } else {
                compact_rows(x0, &offset, c0, v0, e0, 0)
            };
            if !fits && fraction < 1.0 {
                fraction = 1.0;
                continue;
            }
            let (offset_cols, offset_vals) = offset
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c != 0.0)
                .map(|(k, &c)| (k as u32, c))
                .unzip();
            return OffsetSparse { offset_cols, offset_vals, offset, bounds, cols, vals };
        }
    }

    /// Number of rows and stored entries (of `S`).
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let rows = self.bounds.len();
        (rows, (0..rows).map(|i| self.row(i).0.len()).sum())
    }

    /// Where row `i`'s entries are in `cols`/`vals`.
    #[inline]
    fn span(&self, i: usize) -> std::ops::Range<usize> {
        let (start, end) = self.bounds[i];
        start..end
    }

    /// Row `i` of `S`: its columns (ascending) and values.
    #[cfg(test)]
    pub(crate) fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let r = self.span(i);
        (&self.cols[r.clone()], &self.vals[r])
    }

    /// Ask the CPU to bring row `i`'s entries into the caches, without waiting.
    #[inline]
    pub(crate) fn prefetch_row(&self, i: usize) {
        let r = self.span(i);
        prefetch_read(&self.vals[r.clone()]);
        prefetch_read(&self.cols[r]);
    }

    /// `c`, `(D,)`.
    pub(crate) fn offset(&self) -> &[f64] {
        &self.offset
    }
}

/// The most common value in `v` (ties to the smallest) and how often it occurs;
/// `(0, 0)` for no values. Values compare with `==`, as the sparse form does. Reorders
/// `v`.
fn mode(v: &mut [f64]) -> (f64, usize) {
    // a value held by more than half of them (a background pixel's, usually) is the
    // mode: found in one pass (Boyer-Moore majority vote) and checked in another
    let mut candidate = (0.0, 0usize);
    for &x in v.iter() {
        if candidate.1 == 0 {
            candidate = (x, 1);
        } else if x == candidate.0 {
            candidate.1 += 1;
        } else {
            candidate.1 -= 1;
        }
    }
    let count = v.iter().filter(|&&x| x == candidate.0).count();
    if 2 * count > v.len() {
        return (candidate.0, count);
    }
    // otherwise sorted, the longest run
    v.sort_unstable_by(f64::total_cmp);
    let mut best = (0.0, 0);
    for run in v.chunk_by(|a, b| a == b) {
        if run.len() > best.1 {
            best = (run[0], run.len());
        }
    }
    best
}

/// The rows of `x` minus `offset`, compacted into `cols`/`vals` (the entries that differ
/// from `offset`, columns ascending), row `r` at `bounds[r]` counted from `base`. Returns
/// false if they do not fit.
fn compact_rows(
    x: ArrayView2<f64>,
    offset: &[f64],
    cols: &mut [u32],
    vals: &mut [f64],
    bounds: &mut [(usize, usize)],
    base: usize,
) -> bool {
    let d = offset.len();
    let mut len = 0;
    let mut copy = Vec::new(); // a row that is not contiguous
    for (row, bound) in x.rows().into_iter().zip(bounds) {
        if len + d > cols.len() {
            return false;
        }
        let (cols, vals) = (&mut cols[len..len + d], &mut vals[len..len + d]);
        let kept = match row.as_slice() {
            Some(row) => compact_row(row, offset, cols, vals),
            None => {
                copy.clear();
                copy.extend(row.iter());
                compact_row(&copy, offset, cols, vals)
            }
        };
        *bound = (base + len, base + len + kept);
        len += kept;
    }
    true
}

/// `row - offset` compacted into `cols`/`vals` (each at least as long as the row): the
/// entries where `row` differs from `offset`, with their columns. Returns how many.
fn compact_row(row: &[f64], offset: &[f64], cols: &mut [u32], vals: &mut [f64]) -> usize {
    assert!(row.len() == offset.len() && cols.len() >= row.len() && vals.len() >= row.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2; the lengths were checked above.
            return unsafe { compact_row_avx2(row, offset, cols, vals) };
        }
    }
    compact_row_from(0, 0, row, offset, cols, vals)
}

/// [`compact_row`] from column `k0` on, `kept` entries kept before it. Without branches
/// (whether an entry differs is a coin toss the branch predictor loses): every entry is
/// written, and the count advances past the ones that differ. At column k at most k were
/// kept, so the writes stay within the row's length.
fn compact_row_from(
    k0: usize,
    mut kept: usize,
    row: &[f64],
    offset: &[f64],
    cols: &mut [u32],
    vals: &mut [f64],
) -> usize {
    for (k, (&x, &c)) in row.iter().zip(offset).enumerate().skip(k0) {
        cols[kept] = k as u32;
        vals[kept] = x - c;
        kept += usize::from(x != c);
    }
    kept
}

/// For each 4-bit mask of lanes, the lanes that are set, in order (then any).
const COMPRESS4: [[i32; 4]; 16] = {
    let mut t = [[0; 4]; 16];
    let mut m = 0;
    while m < 16 {
        let mut p = 0;
        let mut l = 0;
        while l < 4 {
            if m & (1 << l) != 0 {
                t[m][p] = l;
                p += 1;
            }
            l += 1;
        }
        m += 1;
    }
    t
};

/// [`COMPRESS4`] for doubles seen as pairs of 32-bit lanes.
const COMPRESS8: [[i32; 8]; 16] = {
    let mut t = [[0; 8]; 16];
    let mut m = 0;
    while m < 16 {
        let mut p = 0;
        while p < 4 {
            t[m][2 * p] = 2 * COMPRESS4[m][p];
            t[m][2 * p + 1] = 2 * COMPRESS4[m][p] + 1;
            p += 1;
        }
        m += 1;
    }
    t
};

/// [`compact_row`] four columns at a time: compare, then move the differing values and
/// their column numbers to the front of a vector (a table of permutations by mask) and
/// store all four; the count advances by the differing ones. The same values as the
/// scalar loop (`x - c`, and `x != c` with NaN differing).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn compact_row_avx2(row: &[f64], offset: &[f64], cols: &mut [u32], vals: &mut [f64]) -> usize {
    use std::arch::x86_64::*;
    let d = row.len();
    let mut kept = 0;
    let mut k = 0;
    let mut idx = _mm_setr_epi32(0, 1, 2, 3);
    while k + 4 <= d {
        // SAFETY: k + 4 <= d = the lengths of row and offset, and kept <= k, so the
        // four stores at kept end within cols' and vals' first d places.
        unsafe {
            let x = _mm256_loadu_pd(row.as_ptr().add(k));
            let c = _mm256_loadu_pd(offset.as_ptr().add(k));
            let mask = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_NEQ_UQ>(x, c)) as usize;
            let diff = _mm256_castpd_ps(_mm256_sub_pd(x, c));
            let perm8 = _mm256_loadu_si256(COMPRESS8[mask].as_ptr().cast());
            let packed = _mm256_castps_pd(_mm256_permutevar8x32_ps(diff, perm8));
            _mm256_storeu_pd(vals.as_mut_ptr().add(kept), packed);
            let perm4 = _mm_loadu_si128(COMPRESS4[mask].as_ptr().cast());
            let ks = _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(idx), perm4));
            _mm_storeu_si128(cols.as_mut_ptr().add(kept).cast(), ks);
            kept += mask.count_ones() as usize;
            idx = _mm_add_epi32(idx, _mm_set1_epi32(4));
        }
        k += 4;
    }
    compact_row_from(k, kept, row, offset, cols, vals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn survey_finds_each_columns_background() {
        // column 0: background -2 (3 of 5); column 1: mostly zeros; column 2: -1.5 is
        // the most common value but not a majority; column 3: all different
        let x = array![
            [-2.0, 0.0, 1.0, 4.0],
            [-2.0, 0.0, -1.5, 3.0],
            [5.0, 3.0, -1.5, 2.0],
            [-2.0, 0.0, 4.0, 1.0],
            [7.0, 0.0, 9.0, 0.5]
        ];
        let (offset, density) = OffsetSparse::survey(x.view());
        assert_eq!(offset, vec![-2.0, 0.0, -1.5, 0.5]);
        assert!((density - (2.0 + 1.0 + 3.0 + 4.0) / 20.0).abs() < 1e-15, "{density}");
    }

    #[test]
    fn mode_with_and_without_a_majority() {
        assert_eq!(mode(&mut []), (0.0, 0));
        assert_eq!(mode(&mut [3.0]), (3.0, 1));
        assert_eq!(mode(&mut [1.0, 2.0, 2.0, 1.0, 2.0]), (2.0, 3));
        // no majority: the longest run, ties to the smallest value
        assert_eq!(mode(&mut [5.0, 1.0, 5.0, 1.0, 7.0, 8.0]), (1.0, 2));
        assert_eq!(mode(&mut [9.0, 4.0, 4.0, 2.0, 9.0, 9.0, 0.5]), (9.0, 3));
        // exactly half is not a majority: still the smallest of the tied values
        assert_eq!(mode(&mut [6.0, 6.0, -1.0, -1.0]), (-1.0, 2));
    }

    #[test]
    fn rows_rebuild_the_matrix() {
        let x = array![[1.5, -2.0, 0.0], [-3.0, -2.0, 7.0], [1.5, 4.0, 0.0]];
        let s = OffsetSparse::new(x.view(), vec![1.5, -2.0, 0.0], 0.5);
        assert_eq!(s.size(), (3, 3));
        assert_eq!(s.row(0).0, &[] as &[u32]);
        assert_eq!(s.row(1), (&[0u32, 2][..], &[-4.5, 7.0][..]));
        assert_eq!(rebuilt(&s, 3), x);
    }

    /// `S + 1 c^T` for a sparse form of `d` columns.
    fn rebuilt(s: &OffsetSparse, d: usize) -> Array2<f64> {
        let n = s.size().0;
        let mut back = Array2::from_shape_fn((n, d), |(_, k)| s.offset()[k]);
        for i in 0..n {
            let (cols, vals) = s.row(i);
            for (&k, &v) in cols.iter().zip(vals) {
                back[[i, k as usize]] += v;
            }
        }
        back
    }

    #[test]
    fn compaction_is_the_same_on_every_path() {
        let offset: Vec<f64> = (0..23).map(|k| (k % 3) as f64 - 1.0).collect();
        for seed in 0..50usize {
            let row: Vec<f64> = (0..23)
                .map(|k| match (seed * 31 + k * 17) % 7 {
                    0..=2 => offset[k],
                    3 => -0.0,
                    4 => f64::NAN,
                    _ => (seed * k) as f64 * 0.25,
                })
                .collect();
            let (mut c1, mut v1) = (vec![0u32; 23], vec![0.0; 23]);
            let (mut c2, mut v2) = (vec![0u32; 23], vec![0.0; 23]);
            let n1 = compact_row(&row, &offset, &mut c1, &mut v1);
            let n2 = compact_row_from(0, 0, &row, &offset, &mut c2, &mut v2);
            assert_eq!((n1, &c1[..n1]), (n2, &c2[..n2]), "seed {seed}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v1[..n1]), bits(&v2[..n2]), "seed {seed}");
        }
    }

    #[test]
    fn halves_and_underestimates_build_the_same_rows() {
        // 41 rows, denser in the second half than the estimate says
        let x = Array2::from_shape_fn((41, 9), |(i, k)| {
            if (i * 7 + k * 3) % 5 < 1 + i / 20 { (i * 10 + k) as f64 } else { -1.0 }
        });
        let offset = vec![-1.0; 9];
        for helper in [false, true] {
            for density in [0.0, 0.3, 1.0] {
                let build = || OffsetSparse::new(x.view(), offset.clone(), density);
                let s = if helper { crate::engine::par::with_helper(build) } else { build() };
                assert_eq!(rebuilt(&s, 9), x, "helper {helper}, density {density}");
                for i in 0..41 {
                    let cols = s.row(i).0;
                    assert!(cols.windows(2).all(|w| w[0] < w[1]), "row {i} ascending");
                    assert!(s.row(i).1.iter().all(|&v| v != 0.0), "row {i} only differences");
                }
            }
        }
    }
}
