//! Number formatting as Python and numpy print it, so that notebook and command-line
//! output can be compared with the problem set's text character for character.

use ndarray::Array2;

/// Python's `repr(float)`: the shortest string that round-trips, in scientific
/// notation when the exponent is below -4 or at least 16 (`1.9605862711102873e-08`).
pub fn py_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let exp = x.abs().log10().floor() as i32;
    // log10 can be off by one near powers of ten: read the exponent from Rust's own
    // shortest scientific form instead.
    let sci = format!("{x:e}");
    let (mantissa, e) = sci.split_once('e').expect("{:e} has an exponent");
    let e: i32 = e.parse().unwrap_or(exp);
    if (-4..16).contains(&e) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", e.abs())
    }
}

/// Python's `'%e' % x`: six decimals and a signed exponent of at least two digits
/// (`8.048892e-10`).
pub fn py_e(x: f64) -> String {
    if !x.is_finite() {
        return py_float(x);
    }
    let s = format!("{x:.6e}");
    let (mantissa, e) = s.split_once('e').expect("{:e} has an exponent");
    let e: i32 = e.parse().expect("exponent is an integer");
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", e.abs())
}

/// numpy's `str()` of a 2-d float array with its default print options, for arrays
/// whose values print in fixed notation (as the toy data does): every value with
/// the same number of decimals (at most 8, trailing zeros dropped together),
/// right-aligned to a common width.
///
/// ```
/// let x = ndarray::array![[1.5, -2.25], [10.0, 0.125]];
/// assert_eq!(mlp_core::numpy_str(&x), "[[ 1.5   -2.25 ]\n [10.     0.125]]");
/// ```
pub fn numpy_str(a: &Array2<f64>) -> String {
    // decimals: the most any value needs once rounded to 8 places
    let decimals = a
        .iter()
        .map(|v| {
            let s = format!("{v:.8}");
            let frac = s.split_once('.').map_or("", |(_, f)| f);
            frac.trim_end_matches('0').len()
        })
        .max()
        .unwrap_or(0);
    let cells: Vec<String> = a
        .iter()
        .map(|v| if decimals == 0 { format!("{v:.0}.") } else { pad_zeros(v, decimals) })
        .collect();
    let width = cells.iter().map(String::len).max().unwrap_or(0);
    let ncols = a.ncols().max(1);
    let rows: Vec<String> = cells
        .chunks(ncols)
        .map(|row| {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:>width$}")).collect();
            format!("[{}]", cells.join(" "))
        })
        .collect();
    format!("[{}]", rows.join("\n "))
}

/// `v` with `decimals` decimals, its trailing zeros turned to spaces as numpy does
/// when other values need more digits.
fn pad_zeros(v: &f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let trimmed = s.trim_end_matches('0');
    format!("{trimmed:<width$}", width = s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn py_float_matches_python_repr() {
        assert_eq!(py_float(1.1822479803941373), "1.1822479803941373");
        assert_eq!(py_float(1.9605862711102873e-08), "1.9605862711102873e-08");
        assert_eq!(py_float(0.0178562204869839), "0.0178562204869839");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(2.0), "2.0");
        assert_eq!(py_float(0.0001), "0.0001");
    }

    #[test]
    fn py_e_matches_percent_e() {
        assert_eq!(py_e(8.048892148e-10), "8.048892e-10");
        assert_eq!(py_e(2.035406e-06), "2.035406e-06");
        assert_eq!(py_e(123.0), "1.230000e+02");
    }

    #[test]
    fn numpy_str_prints_the_toy_data_like_numpy() {
        let x = array![[16.24345364, -6.11756414], [8.65407629, -23.01538697]];
        assert_eq!(numpy_str(&x), "[[ 16.24345364  -6.11756414]\n [  8.65407629 -23.01538697]]");
    }
}
