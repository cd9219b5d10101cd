//! No file can crash a loader: random and mutated MNIST IDX files (raw and gzip) and
//! saved networks (`.npy`, `model.json`) fed to the loaders. Each load returns a
//! result (an error naming the file, or for a harmless mutation of a weight a network
//! of the right shapes), never panics, and allocates no more than the files' sizes
//! justify: this thread's peak allocation during a load is checked against them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::io::Write;
use std::path::Path;

use mlp_core::{Activation, LoadOptions, MNIST_FILES, NumpyRng, TwoLayerMLP, load_mnist};
use proptest::prelude::*;

/// The system allocator, counting what the current thread has allocated and its peak.
struct Counting;

thread_local! {
    static IN_USE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = IN_USE.try_with(|u| {
            u.set(u.get() + layout.size());
            let _ = PEAK.try_with(|p| p.set(p.get().max(u.get())));
        });
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = IN_USE.try_with(|u| u.set(u.get().saturating_sub(layout.size())));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = IN_USE.try_with(|u| {
            u.set(u.get().saturating_sub(layout.size()) + new_size);
            let _ = PEAK.try_with(|p| p.set(p.get().max(u.get())));
        });
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `f()` and the most it had allocated at once beyond what was in use before.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = IN_USE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let r = f();
    (r, PEAK.with(Cell::get) - before)
}

/// Bytes of the regular files in `dir`.
fn folder_bytes(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len() as usize).sum()
}

/// What the loaders may allocate besides the files' contents: paths, error
/// messages, parser state.
const SLACK: usize = 256 << 10;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One IDX file as a test writes it: an optionally valid-looking header (the right
/// magic or another, any count, any image size) then some bytes, raw or gzipped
/// (whole or cut short).
#[derive(Clone, Debug)]
struct IdxCase {
    right_magic: bool,
    magic: u32,
    count: u32,
    rows: u32,
    cols: u32,
    cut: Option<usize>,
    tail: Vec<u8>,
    gz: bool,
    cut_gz: Option<usize>,
}

fn idx_case() -> impl Strategy<Value = IdxCase> {
    (
        any::<bool>(),
        any::<u32>(),
        prop_oneof![any::<u32>(), Just(60_000), Just(10_000), Just(u32::MAX)],
        prop_oneof![Just(28), any::<u32>()],
        prop_oneof![Just(28), any::<u32>()],
        proptest::option::of(0usize..20),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        proptest::option::of(0usize..40),
    )
        .prop_map(|(right_magic, magic, count, rows, cols, cut, tail, gz, cut_gz)| IdxCase {
            right_magic,
            magic,
            count,
            rows,
            cols,
            cut,
            tail,
            gz,
            cut_gz,
        })
}

fn write_idx(dir: &Path, name: &str, images: bool, c: &IdxCase) {
    let magic = if c.right_magic { if images { 2051 } else { 2049 } } else { c.magic };
    let mut bytes = Vec::new();
    bytes.extend(magic.to_be_bytes());
    bytes.extend(c.count.to_be_bytes());
    if images {
        bytes.extend(c.rows.to_be_bytes());
        bytes.extend(c.cols.to_be_bytes());
    }
    if let Some(cut) = c.cut {
        bytes.truncate(cut);
    }
    bytes.extend(&c.tail);
    if c.gz {
        let mut z = gzip(&bytes);
        if let Some(cut) = c.cut_gz {
            z.truncate(cut);
        }
        fs::write(dir.join(format!("{name}.gz")), z).unwrap();
    } else {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_idx_file_crashes_the_mnist_loader(
        files in proptest::collection::vec(idx_case(), 4),
        verify in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (file, case) in MNIST_FILES.iter().zip(&files) {
            write_idx(dir.path(), file.name, file.name.contains("images"), case);
        }
        let budget = folder_bytes(dir.path()) + SLACK;
        let options = LoadOptions { verify_checksums: verify };
        let (result, peak) = peak_during(|| load_mnist(dir.path(), &options));
        // these files are all far smaller than MNIST's, so none is valid
        let e = result.expect_err("no file here is a valid MNIST file");
        let text = e.to_string();
        prop_assert!(MNIST_FILES.iter().any(|f| text.contains(f.name)), "{text}");
        prop_assert!(peak <= budget, "allocated {peak} bytes for {budget} of files: {text}");
    }

    #[test]
    fn no_mutation_of_a_saved_network_crashes_its_loader(
        which in 0usize..5,
        mutation in 0usize..4,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        text in "[ -~]{0,40}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let net = TwoLayerMLP::new(7, 5, 3, 0.1, Activation::Sigmoid, &mut NumpyRng::new(1)).unwrap();
        net.save_npy(dir.path()).unwrap();
        let name = ["W1.npy", "b1.npy", "W2.npy", "b2.npy", "model.json"][which];
        let path = dir.path().join(name);
        let mut bytes = fs::read(&path).unwrap();
        let i = at.index(bytes.len());
        match mutation {
            0 => bytes.truncate(i),                       // cut short
            1 => bytes[i] = byte,                         // one byte changed
            2 => bytes.splice(i..i, text.bytes()).for_each(drop), // text inserted (header fields)
            _ => bytes.extend(text.bytes()),              // trailing bytes
        }
        fs::write(&path, &bytes).unwrap();
        let budget = folder_bytes(dir.path()) + SLACK;
        let (result, peak) = peak_during(|| TwoLayerMLP::load_npy(dir.path()));
        match result {
            Ok(back) => {
                // a change the formats cannot see (a weight's value, JSON spacing)
                prop_assert_eq!(back.params.w1.dim(), (7, 5));
                prop_assert_eq!(back.params.w2.dim(), (5, 3));
                prop_assert!(back.params.w1.iter().chain(&back.params.w2).all(|w| w.is_finite()));
            }
            Err(e) => {
                let text = e.to_string();
                let named = ["W1.npy", "b1.npy", "W2.npy", "b2.npy", "model.json"]
                    .iter()
                    .any(|f| text.contains(f));
                prop_assert!(named, "{}", text);
            }
        }
        prop_assert!(peak <= budget, "allocated {} bytes for {} of files", peak, budget);
    }
}

#[test]
fn a_header_claiming_a_trillion_rows_is_an_error_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let net = TwoLayerMLP::new(7, 5, 3, 0.1, Activation::Relu, &mut NumpyRng::new(1)).unwrap();
    net.save_npy(dir.path()).unwrap();
    // a well-formed header (written by ndarray-npy) for 10^12 x 5 doubles, then W1's data
    let w1 = dir.path().join("W1.npy");
    let data = fs::read(&w1).unwrap()[128..].to_vec();
    let header = ndarray_npy::npy::header::Header {
        type_descriptor: <f64 as ndarray_npy::WritableElement>::type_descriptor(),
        layout: ndarray_npy::npy::header::Layout::Standard,
        shape: vec![1_000_000_000_000, 5],
    };
    fs::write(&w1, [header.to_bytes().unwrap(), data].concat()).unwrap();
    let (result, peak) = peak_during(|| TwoLayerMLP::load_npy(dir.path()));
    let e = result.unwrap_err().to_string();
    assert!(e.contains("W1.npy") && e.contains("[1000000000000, 5] needs"), "{e}");
    assert!(peak < SLACK, "{peak}");

    // an IDX header claiming 2^32 - 1 images
    let mnist = tempfile::tempdir().unwrap();
    for file in &MNIST_FILES {
        let images = file.name.contains("images");
        let case = IdxCase {
            right_magic: true,
            magic: 0,
            count: u32::MAX,
            rows: 28,
            cols: 28,
            cut: None,
            tail: vec![0; 100],
            gz: false,
            cut_gz: None,
        };
        write_idx(mnist.path(), file.name, images, &case);
    }
    let (result, peak) = peak_during(|| load_mnist(mnist.path(), &LoadOptions::default()));
    let e = result.unwrap_err().to_string();
    assert!(e.contains("header says 4294967295 items"), "{e}");
    assert!(peak < SLACK, "{peak}");
}
