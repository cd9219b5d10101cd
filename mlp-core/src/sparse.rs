//! Inputs that are mostly one value per column, stored as that value plus the entries
//! that differ from it; and the products a training step needs, computed from them.
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

use crate::simd::{Kernel, dispatch, dispatch_gather, prefetch_read};

/// Rows sampled (evenly spaced) to choose the column values and estimate the density.
const SAMPLE_ROWS: usize = 1024;

/// Rows of a batch whose products with `W1` are taken together (see
/// [`OffsetSparse::rows_times`]): at most this many.
const ROW_GROUP: usize = 64;

/// Bytes of `W1` (a block of its rows) that a group of rows works through at a time.
const W1_BLOCK_BYTES: usize = 48 * 1024;

/// `X = S + 1 c^T`: the column values `c` and the rows of `S` (compressed sparse rows,
/// columns ascending within a row).
#[derive(Clone, Debug)]
pub(crate) struct OffsetSparse {
    /// The columns with `c[k] != 0`, and those values.
    offset_cols: Vec<u32>,
    offset_vals: Vec<f64>,
    /// `c`, `(D,)`.
    offset: Vec<f64>,
    /// Row `i` of `S` is entries `bounds[i].0..bounds[i].1` of `cols`/`vals`.
    bounds: Vec<(usize, usize)>,
    cols: Vec<u32>,
    vals: Vec<f64>,
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
        let density = if rows * d == 0 {
            1.0
        } else {
            1.0 - kept as f64 / (rows * d) as f64
        };
        (offset, density)
    }

    /// The sparse form of `x` with column values `offset` and the `density` that
    /// [`Self::survey`] estimated (only to size the storage).
    /// Built in two halves on two threads when a helper is available.
    pub(crate) fn new(x: ArrayView2<f64>, offset: Vec<f64>, density: f64) -> Self {
        let (n, d) = x.dim();
        debug_assert_eq!(offset.len(), d);
        let split = if n >= 2 && crate::par::threads() >= 2 {
            n / 2
        } else {
            n
        };
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
                let (a, b) = crate::par::join(
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
            return OffsetSparse {
                offset_cols,
                offset_vals,
                offset,
                bounds,
                cols,
                vals,
            };
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

    /// `out += S[rows] W1[:, j0..j0 + w]`: `W1` `(D, h)` row-major and `out`
    /// `(rows.len(), w)` row-major (a window of `W1`'s columns: all of them, or the
    /// half one thread of a training step owns).
    ///
    /// Each row is the same chain of multiply-adds as [`gather_dot`] over the whole
    /// row, taken in blocks of input columns for a group of rows at a time, so that a
    /// block of `W1`'s rows is reused from the near caches by all the rows of the
    /// group before the next block is fetched. With 64 hidden units, blocks of 96
    /// rows of `W1` (48 KB) measured best: the forward products of a training step
    /// took 20% less time than row by row, and 16% less again with the group's
    /// entries prefetched (blocks of 48 and 128 rows: 5-10% slower than 96).
    pub(crate) fn rows_times(
        &self,
        rows: &[usize],
        w1: &[f64],
        h: usize,
        j0: usize,
        out: &mut [f64],
    ) {
        struct RowsTimes<'a> {
            s: &'a OffsetSparse,
            rows: &'a [usize],
            w1: &'a [f64],
            h: usize,
            j0: usize,
            out: &'a mut [f64],
        }
        impl Kernel for RowsTimes<'_> {
            type Output = ();
            #[inline(always)]
            fn run<const T: usize>(self) {
                self.s
                    .rows_times_tiled::<T>(self.rows, self.w1, self.h, self.j0, self.out)
            }
        }
        dispatch_gather(RowsTimes {
            s: self,
            rows,
            w1,
            h,
            j0,
            out,
        })
    }

    /// [`Self::rows_times`] with [`gather_dot`]'s tiles of `T` inlined (compiled once
    /// per instruction set, so that no row pays for a call and a dispatch).
    #[inline(always)]
    fn rows_times_tiled<const T: usize>(
        &self,
        rows: &[usize],
        w1: &[f64],
        h: usize,
        j0: usize,
        out: &mut [f64],
    ) {
        let w = if rows.is_empty() {
            0
        } else {
            out.len() / rows.len()
        };
        if w == 0 {
            return;
        }
        let block = (W1_BLOCK_BYTES / (8 * w)).max(8);
        let walk = |out: &mut &mut [f64], r: usize, cols: &[u32], vals: &[f64], k1: u32| {
            let z = &mut out[r * w..(r + 1) * w];
            // the row's entries before column k1, found by the first tile's pass
            let (n, done) = if T <= w {
                let n = gather_dot_tile_until::<T>(w1, h, j0, cols, vals, k1, &mut z[..T]);
                (n, T)
            } else {
                (count_until(cols, k1), 0)
            };
            let part = (&cols[..n], &vals[..n]);
            gather_dot_window::<T>(w1, h, j0, done, &[part], z);
            n
        };
        self.blocks(rows, block, &mut { out }, walk, |_, _, _| {});
    }

    /// `acc[k] += S[rows[r], k] dz[r, j0..j0 + w]` for every stored entry, rows in
    /// order: `dz` `(rows.len(), h)` and `acc` `(D, w)` row-major. Each element of
    /// `acc` is one chain of fused multiply-adds in row order, the order of
    /// [`gather_dot`] over the column's entries, so `acc` from zero is the column's
    /// `S^T dz` as the gathers sum it. Blocked like [`Self::rows_times`], so that a
    /// block of `acc`'s rows stays in the near caches while the group's rows add to it;
    /// once a block of rows `k0..` is complete, `done(k0, those rows of acc)`, while
    /// they are still there.
    pub(crate) fn add_transposed_times(
        &self,
        rows: &[usize],
        dz: &[f64],
        h: usize,
        j0: usize,
        acc: &mut [f64],
        done: impl FnMut(usize, &mut [f64]),
    ) {
        struct AddTransposed<'a, F> {
            s: &'a OffsetSparse,
            rows: &'a [usize],
            dz: &'a [f64],
            h: usize,
            j0: usize,
            acc: &'a mut [f64],
            done: F,
        }
        impl<F: FnMut(usize, &mut [f64])> Kernel for AddTransposed<'_, F> {
            type Output = ();
            #[inline(always)]
            fn run<const T: usize>(self) {
                let AddTransposed {
                    s,
                    rows,
                    dz,
                    h,
                    j0,
                    mut acc,
                    mut done,
                } = self;
                let d = s.offset.len();
                let w = acc.len().checked_div(d).unwrap_or(0);
                if w == 0 {
                    return;
                }
                let block = (W1_BLOCK_BYTES / (8 * w)).max(8);
                let walk = |acc: &mut &mut [f64], r: usize, cols: &[u32], vals: &[f64], k1| {
                    let z = &dz[r * h + j0..r * h + j0 + w];
                    let (n, done) = if T <= w {
                        (scatter_tile_until::<T>(z, cols, vals, k1, acc, w, 0), T)
                    } else {
                        (count_until(cols, k1), 0)
                    };
                    scatter_window::<T>(z, &cols[..n], &vals[..n], acc, w, done);
                    n
                };
                let block_done = |acc: &mut &mut [f64], k0: usize, k1: usize| {
                    done(k0, &mut acc[k0 * w..k1 * w]);
                };
                s.blocks(rows, block, &mut acc, walk, block_done);
            }
        }
        dispatch_gather(AddTransposed {
            s: self,
            rows,
            dz,
            h,
            j0,
            acc,
            done,
        })
    }

    /// The walk [`Self::rows_times`] and [`Self::add_transposed_times`] share: groups
    /// of rows, and for each group blocks of `block` input columns; for each block,
    /// each row of the group in order. `f(state, r, cols, vals, k1)` gets the row's
    /// position `r` in `rows`, its entries from where the last block ended, and the
    /// block's end `k1`; it returns how many of the entries were before `k1`. Once the
    /// last group is through a block `k0..k1`, `done(state, k0, k1)`.
    #[inline(always)]
    fn blocks<S>(
        &self,
        rows: &[usize],
        block: usize,
        state: &mut S,
        mut f: impl FnMut(&mut S, usize, &[u32], &[f64], u32) -> usize,
        mut done: impl FnMut(&mut S, usize, usize),
    ) {
        let d = self.offset.len();
        let groups = rows.len().div_ceil(ROW_GROUP).max(1);
        for g in 0..groups {
            let group =
                &rows[(g * ROW_GROUP).min(rows.len())..((g + 1) * ROW_GROUP).min(rows.len())];
            for &i in group {
                self.prefetch_row(i);
            }
            // where each row of the group is up to
            let mut at = [0usize; ROW_GROUP];
            for (a, &i) in at.iter_mut().zip(group) {
                *a = self.bounds[i].0;
            }
            let mut k1 = 0;
            while k1 < d {
                let k0 = k1;
                k1 = (k1 + block).min(d);
                for (r, (a, &i)) in at.iter_mut().zip(group).enumerate() {
                    let (start, end) = (*a, self.bounds[i].1);
                    let n = f(
                        state,
                        g * ROW_GROUP + r,
                        &self.cols[start..end],
                        &self.vals[start..end],
                        k1 as u32,
                    );
                    *a = start + n;
                }
                if g + 1 == groups {
                    done(state, k0, k1);
                }
            }
        }
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

    /// `out = c W1` `(H,)` for `W1` `(D, H)` in row-major order.
    pub(crate) fn offset_times(&self, w1: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        gather_dot(w1, &self.offset_cols, &self.offset_vals, out);
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

/// A sparse row (or part of one): column indices and values.
pub(crate) type Entries<'a> = (&'a [u32], &'a [f64]);

/// `out[j] += sum_e vals[e] * m[idx[e] * h + j]` for `j < h = out.len()`: a sparse row
/// times the row-major matrix `m` `(_, h)`. Each `out[j]` is one chain of fused
/// multiply-adds in `e` order, whatever the instruction set, so every path gives the
/// same result. The rows of `m` named by `idx` must exist.
pub(crate) fn gather_dot(m: &[f64], idx: &[u32], vals: &[f64], out: &mut [f64]) {
    struct GatherDot<'a> {
        m: &'a [f64],
        entries: Entries<'a>,
        out: &'a mut [f64],
    }
    impl Kernel for GatherDot<'_> {
        type Output = ();
        #[inline(always)]
        fn run<const T: usize>(self) {
            gather_dot_tiled::<T>(self.m, &[self.entries], self.out)
        }
    }
    dispatch(GatherDot {
        m,
        entries: (idx, vals),
        out,
    })
}

/// Whether [`gather_dot`] runs on fused multiply-add hardware (elsewhere `mul_add` is a
/// slow library call, and the dense products are the faster way).
pub(crate) fn fast_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::simd::has_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        cfg!(target_arch = "aarch64")
    }
}

/// [`gather_dot`] for a row given in parts (one chain through the parts in order), over
/// column tiles of `T` (kept in registers), then of 8, then of 1.
#[inline(always)]
fn gather_dot_tiled<const T: usize>(m: &[f64], parts: &[Entries], out: &mut [f64]) {
    gather_dot_tiled_from::<T>(m, parts, out, 0)
}

/// [`gather_dot_tiled`] for the columns from `j` on.
#[inline(always)]
fn gather_dot_tiled_from<const T: usize>(m: &[f64], parts: &[Entries], out: &mut [f64], j: usize) {
    gather_dot_window::<T>(m, out.len(), 0, j, parts, out)
}

/// Columns `j0 + from..j0 + out.len()` of [`gather_dot_tiled`] for `m` `(_, h)` into
/// `out[from..]`: tiles of `T`, then of 32 (half rows with AVX-512), of 8 and of 1.
#[inline(always)]
fn gather_dot_window<const T: usize>(
    m: &[f64],
    h: usize,
    j0: usize,
    from: usize,
    parts: &[Entries],
    out: &mut [f64],
) {
    let w = out.len();
    let mut j = from;
    while j + T <= w {
        gather_dot_tile::<T>(m, h, j0 + j, parts, &mut out[j..j + T]);
        j += T;
    }
    while T > 32 && j + 32 <= w {
        gather_dot_tile::<32>(m, h, j0 + j, parts, &mut out[j..j + 32]);
        j += 32;
    }
    while j + 8 <= w {
        gather_dot_tile::<8>(m, h, j0 + j, parts, &mut out[j..j + 8]);
        j += 8;
    }
    while j < w {
        gather_dot_tile::<1>(m, h, j0 + j, parts, &mut out[j..j + 1]);
        j += 1;
    }
}

/// How many of `cols` (ascending) are before `k1`.
#[inline(always)]
fn count_until(cols: &[u32], k1: u32) -> usize {
    cols.iter().take_while(|&&k| k < k1).count()
}

/// The first `T` columns of [`gather_dot_window`] (`out` is those `T`, column `j0` of
/// `m` `(_, h)` the first) over the entries before column `k1` (`cols` ascending):
/// returns how many there were.
#[inline(always)]
fn gather_dot_tile_until<const T: usize>(
    m: &[f64],
    h: usize,
    j0: usize,
    cols: &[u32],
    vals: &[f64],
    k1: u32,
    out: &mut [f64],
) -> usize {
    let mut acc = [0.0; T];
    acc.copy_from_slice(out);
    let mut n = 0;
    for (&i, &v) in cols.iter().zip(vals) {
        if i >= k1 {
            break;
        }
        let start = i as usize * h + j0;
        add_scaled(&mut acc, v, &m[start..start + T]);
        n += 1;
    }
    out.copy_from_slice(&acc);
    n
}

/// `acc[k, jt..jt + T] += v z[jt..jt + T]` (`acc` `(_, w)` row-major) for the entries
/// `(k, v)` before column `k1` (`cols` ascending): returns how many there were. `z`'s
/// tile stays in registers; `acc`'s rows are read and written.
#[inline(always)]
fn scatter_tile_until<const T: usize>(
    z: &[f64],
    cols: &[u32],
    vals: &[f64],
    k1: u32,
    acc: &mut [f64],
    w: usize,
    jt: usize,
) -> usize {
    let mut zt = [0.0; T];
    zt.copy_from_slice(&z[jt..jt + T]);
    let mut n = 0;
    for (&k, &v) in cols.iter().zip(vals) {
        if k >= k1 {
            break;
        }
        let start = k as usize * w + jt;
        let a: &mut [f64; T] = (&mut acc[start..start + T]).try_into().expect("T");
        add_scaled(a, v, &zt);
        n += 1;
    }
    n
}

/// [`scatter_tile_until`] over all the entries, for columns `from..w` of `z`: tiles of
/// `T`, of 8 and of 1.
#[inline(always)]
fn scatter_window<const T: usize>(
    z: &[f64],
    cols: &[u32],
    vals: &[f64],
    acc: &mut [f64],
    w: usize,
    from: usize,
) {
    let mut j = from;
    while j + T <= w {
        scatter_tile_until::<T>(z, cols, vals, u32::MAX, acc, w, j);
        j += T;
    }
    while j + 8 <= w {
        scatter_tile_until::<8>(z, cols, vals, u32::MAX, acc, w, j);
        j += 8;
    }
    while j < w {
        scatter_tile_until::<1>(z, cols, vals, u32::MAX, acc, w, j);
        j += 1;
    }
}

/// `acc += v row`, one fused multiply-add per element: the step of every chain of the
/// gathers.
#[inline(always)]
fn add_scaled<const T: usize>(acc: &mut [f64; T], v: f64, row: &[f64]) {
    for t in 0..T {
        acc[t] = v.mul_add(row[t], acc[t]);
    }
}

/// Columns `j..j + T` of [`gather_dot_tiled`] (`out` is those `T`), summed in
/// registers.
#[inline(always)]
fn gather_dot_tile<const T: usize>(
    m: &[f64],
    h: usize,
    j: usize,
    parts: &[Entries],
    out: &mut [f64],
) {
    let mut acc = [0.0; T];
    acc.copy_from_slice(out);
    for &(idx, vals) in parts {
        for (&i, &v) in idx.iter().zip(vals) {
            let start = i as usize * h + j;
            add_scaled(&mut acc, v, &m[start..start + T]);
        }
    }
    out.copy_from_slice(&acc);
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
        assert!(
            (density - (2.0 + 1.0 + 3.0 + 4.0) / 20.0).abs() < 1e-15,
            "{density}"
        );
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
            if (i * 7 + k * 3) % 5 < 1 + i / 20 {
                (i * 10 + k) as f64
            } else {
                -1.0
            }
        });
        let offset = vec![-1.0; 9];
        for helper in [false, true] {
            for density in [0.0, 0.3, 1.0] {
                let build = || OffsetSparse::new(x.view(), offset.clone(), density);
                let s = if helper {
                    crate::par::with_helper(build)
                } else {
                    build()
                };
                assert_eq!(rebuilt(&s, 9), x, "helper {helper}, density {density}");
                for i in 0..41 {
                    let cols = s.row(i).0;
                    assert!(cols.windows(2).all(|w| w[0] < w[1]), "row {i} ascending");
                    assert!(
                        s.row(i).1.iter().all(|&v| v != 0.0),
                        "row {i} only differences"
                    );
                }
            }
        }
    }

    #[test]
    fn gather_dot_is_a_sparse_row_times_a_matrix_for_every_width() {
        // widths around each tile size, so that every tile loop runs
        for h in [1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 130] {
            let m = Array2::from_shape_fn((5, h), |(i, j)| (i * 31 + j * 7) as f64 * 0.25 - 3.0);
            let (idx, vals) = ([4u32, 0, 2], [0.5, -1.25, 2.0]);
            let mut out = vec![1.0; h];
            gather_dot(m.as_slice().unwrap(), &idx, &vals, &mut out);
            for (j, &o) in out.iter().enumerate() {
                let expect = idx
                    .iter()
                    .zip(&vals)
                    .fold(1.0, |acc, (&i, &v)| v.mul_add(m[[i as usize, j]], acc));
                assert_eq!(o, expect, "h {h} column {j}");
            }
        }
    }

    #[test]
    fn blocked_products_are_the_row_by_row_chains() {
        // 300 columns (several blocks of W1's rows for every width), 70 rows (two
        // groups), each row's entries where (i + k) % 3 == 0
        let (n, d) = (70, 300);
        let x = Array2::from_shape_fn((n, d), |(i, k)| {
            if (i + k) % 3 == 0 {
                ((i * 13 + k * 7) % 17) as f64 * 0.37 - 2.0
            } else {
                0.5 - (k % 4) as f64
            }
        });
        let offset: Vec<f64> = (0..d).map(|k| 0.5 - (k % 4) as f64).collect();
        let s = OffsetSparse::new(x.view(), offset, 0.4);
        let rows: Vec<usize> = (0..n).rev().collect();
        for h in [1, 8, 33, 64, 200] {
            let w1: Vec<f64> = (0..d * h)
                .map(|e| ((e * 31) % 101) as f64 * 0.013 - 0.6)
                .collect();
            // all columns, and windows of them (as a thread of a training step takes)
            for (j0, w) in [(0, h), (0, h / 2), (h / 2, h - h / 2), (h / 3, h / 3)] {
                let mut out = vec![0.0; n * w];
                s.rows_times(&rows, &w1, h, j0, &mut out);
                for (r, &i) in rows.iter().enumerate() {
                    let mut want = vec![0.0; h];
                    let (cols, vals) = s.row(i);
                    gather_dot(&w1, cols, vals, &mut want);
                    let got = &out[r * w..(r + 1) * w];
                    assert_eq!(got, &want[j0..j0 + w], "h {h} window {j0}+{w} row {i}");
                }
            }
        }
    }

    #[test]
    fn transposed_products_are_each_columns_chain_in_row_order() {
        // as above; a batch with a repeated row, in no particular order
        let (n, d) = (50, 300);
        let x = Array2::from_shape_fn((n, d), |(i, k)| {
            if (i * 7 + k) % 4 == 0 {
                ((i * 5 + k * 11) % 19) as f64 * 0.29 - 2.5
            } else {
                0.0
            }
        });
        let s = OffsetSparse::new(x.view(), vec![0.0; d], 0.3);
        let rows: Vec<usize> = (0..70).map(|r| (r * 17) % n).collect();
        for h in [1, 8, 33, 64, 200] {
            let dz: Vec<f64> = (0..rows.len() * h)
                .map(|e| ((e * 37) % 89) as f64 * 0.021 - 0.9)
                .collect();
            for (j0, w) in [(0, h), (0, h / 2), (h / 2, h - h / 2)] {
                let mut acc = vec![0.0; d * w];
                // each block handed over once complete: what it holds then is final
                let mut seen = Vec::new();
                s.add_transposed_times(&rows, &dz, h, j0, &mut acc, |k0, block| {
                    seen.push((k0, block.to_vec()))
                });
                let mut next = 0;
                for (k0, block) in &seen {
                    assert_eq!(*k0, next, "blocks in order, each row once");
                    assert_eq!(&acc[k0 * w..k0 * w + block.len()], &block[..]);
                    next = k0 + block.len() / w.max(1);
                }
                assert_eq!(next, if w == 0 { 0 } else { d }, "every row handed over");
                // column k's entries in row order, times dz's rows: one gather chain
                for k in 0..d {
                    let (mut idx, mut vals) = (Vec::new(), Vec::new());
                    for (r, &i) in rows.iter().enumerate() {
                        let (cols, v) = s.row(i);
                        if let Some(e) = cols.iter().position(|&c| c as usize == k) {
                            idx.push(r as u32);
                            vals.push(v[e]);
                        }
                    }
                    let mut want = vec![0.0; h];
                    gather_dot(&dz, &idx, &vals, &mut want);
                    let got = &acc[k * w..(k + 1) * w];
                    assert_eq!(got, &want[j0..j0 + w], "h {h} window {j0}+{w} column {k}");
                }
            }
        }
    }
}
