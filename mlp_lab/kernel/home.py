"""A kernel's home and work directory: evcxr's and cargo's settings, the slots.

Each kernel takes a *slot*, a persistent work directory under the kernel home, locked
(flock) for the kernel's life, so no two kernels ever share one; a new slot starts as a
copy of the prebuilt template (`--prebuild`), so mlp-core and its dependencies are
compiled once and found fresh by cargo at the next start.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess

from mlp_lab import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
EVCXR = os.environ.get("MLP_EVCXR", os.path.join(ROOT, ".tools", "evcxr-0.22.0", "bin", "evcxr_jupyter"))


def kernel_home():
    """The slots, template and evcxr configuration for this clone's kernels."""
    if os.environ.get("MLP_KERNEL_HOME"):
        return os.environ["MLP_KERNEL_HOME"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(ROOT.encode()).hexdigest()[:10]
    version = os.path.basename(os.path.dirname(os.path.dirname(EVCXR)))  # evcxr-0.22.0
    return os.path.join(cache, "mlp-lab", "kernels", "%s-%s" % (version, key))


# Folders of the standard library's source rust-analyzer does not read (relative to the
# source roots; the standard library's is its `library/` folder).
ANALYSIS_SKIP = [
    "stdarch", "portable-simd", "std_detect",  # SIMD intrinsics and CPU feature detection
    "std/src/sys", "std/src/os", "backtrace", "unwind", "panic_unwind", "panic_abort",  # the platform layer
    "compiler-builtins", "profiler_builtins", "rtstartup", "windows_link",
    "coretests", "alloctests", "test", "proc_macro",  # tests, procedural macros
]
# Packages among mlp-core's dependencies it uses inside only: npy files (ndarray-npy and its
# Python-literal parser), PNG, MNIST, fonts, JSON, hashes, error derives; the procedural
# macros' own dependencies.
ANALYSIS_SKIP_CRATES = [
    "ndarray-npy", "py_literal", "pest", "pest_derive", "pest_generator", "pest_meta", "pest_stack_guard",
    "ucd-trie", "num-bigint", "psm", "stacker",
    "png", "fdeflate", "flate2", "miniz_oxide", "adler2", "simd-adler32", "crc32fast", "base64",
    "mnist", "byteorder", "log",
    "ab_glyph", "ab_glyph_rasterizer", "owned_ttf_parser", "ttf-parser",
    "serde_core", "serde_json", "itoa", "zmij", "memchr", "sha2", "digest", "block-buffer", "crypto-common",
    "generic-array", "typenum", "cpufeatures", "thiserror", "thiserror-impl", "rand_mt",
    "syn", "quote", "proc-macro2", "unicode-ident", "libc", "cblas-sys",
    # ndarray's and plotters' inside (matrix kernels, complex and integer helpers, caches)
    "matrixmultiply", "rawpointer", "num-complex", "num-integer", "once_cell", "bitflags", "cfg-if",
    "rand", "rand_core",  # behind NumpyRng
]

# evcxr's settings for every notebook (what the first cell set before: `:opt 2` and
# keeping variables through a panic), and cargo's profile for the dependencies.
EVCXR_TOML = """[evcxr]
opt_level = "2"
preserve_vars_on_panic = true
"""
# The dependencies (ndarray, matrixmultiply, mlp-core...) compiled as a release build
# would be; the notebook's own cells keep evcxr's debug assertions and overflow checks.
CARGO_CONFIG = """[profile.dev.package."*"]
opt-level = 3
debug-assertions = false
overflow-checks = false
codegen-units = 16

# The notebook's own code (evcxr's crate, `ctx`) with line tables: mlp-core's panic hook
# lists the stack, and the relay finds the notebook's line in it (notebook_frame).
[profile.dev.package.ctx]
debug = "line-tables-only"
strip = "none"

[build]
rustc-wrapper = "%s"
""" % os.path.join(HERE, "rustc_progress.sh")


def read_text(path):
    """A file's text, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def write_if_changed(path, text):
    if read_text(path) == text:
        return
    tmp = "%s.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def prepare_home(home):
    os.makedirs(os.path.join(home, "evcxr"), exist_ok=True)
    os.makedirs(os.path.join(home, ".cargo"), exist_ok=True)
    os.makedirs(os.path.join(home, "slots"), exist_ok=True)
    write_if_changed(os.path.join(home, "evcxr", "evcxr.toml"), EVCXR_TOML)
    write_if_changed(os.path.join(home, ".cargo", "config.toml"), CARGO_CONFIG)


def template_slot(home):
    """The prebuilt template's slot: the kernel home's own, or MLP_KERNEL_TEMPLATE (a
    student's kernels in the hub keep their slots on their disk and copy the image's)."""
    return os.environ.get("MLP_KERNEL_TEMPLATE") or os.path.join(home, "slots", "template")


def template_stamp(home):
    """When the template was last prebuilt (its prebuilt.stamp's time), or None."""
    try:
        return "%.6f" % os.path.getmtime(os.path.join(template_slot(home), "prebuilt.stamp"))
    except OSError:
        return None


def take_slot(home, name=None):
    """A work directory no other kernel is using, locked until this process and evcxr
    (which inherits the lock) have exited. Returns (lock fd, work directory)."""
    slots = os.path.join(home, "slots")
    names = [name] if name else None
    k = 0
    while True:
        slot = names[0] if names else str(k)
        path = os.path.join(slots, slot)
        os.makedirs(path, exist_ok=True)
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if names else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            k += 1
            continue
        work = os.path.join(path, "work")
        template = os.path.join(template_slot(home), "work")
        copied = os.path.join(path, "template.stamp")  # the template's prebuilt.stamp when copied
        stamp = template_stamp(home)
        if path != os.path.dirname(template) and stamp is not None and read_text(copied) not in (None, stamp):
            # the template was built again (a new course image): this slot starts again from it
            shutil.rmtree(work, ignore_errors=True)
        if not os.path.isdir(work):
            if path != os.path.dirname(template) and os.path.isdir(os.path.join(template, "target")):
                # the template is only written under its own lock, by --prebuild (a lock
                # held for reading where the template is read-only: a student's container)
                lock = os.path.join(os.path.dirname(template), "lock")
                try:
                    tfd = os.open(lock, os.O_RDONLY)
                except FileNotFoundError:
                    tfd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(tfd, fcntl.LOCK_EX)
                try:
                    shutil.rmtree(work + ".new", ignore_errors=True)  # a copy cut short
                    shutil.copytree(template, work + ".new", symlinks=True)
                    os.rename(work + ".new", work)
                    write_if_changed(copied, stamp or "")
                finally:
                    os.close(tfd)
            else:
                os.makedirs(work)
        os.set_inheritable(fd, True)
        return fd, work


# the environment evcxr's process gets, on the wire with mlp-core and the rustc wrapper
# (ARCHITECTURE.md's table; tests/unit/test_wire.py): where mlp-core's panic hook writes
# the full report (src/kernel.rs), where rustc_progress.sh notes each crate, and whether
# mlp-core's training shows a live figure (src/live.rs; 0 turns it off)
PANIC_FILE_ENV = "MLP_PANIC_FILE"
PROGRESS_FILE_ENV = "MLP_PROGRESS_FILE"
DISPLAY_ENV = "MLP_KERNEL_DISPLAY"


def evcxr_env(home, work):
    env = dict(os.environ)
    env["EVCXR_TMPDIR"] = work
    env["EVCXR_CONFIG_DIR"] = os.path.join(home, "evcxr")
    env[PANIC_FILE_ENV] = panic_file(work)
    env[PROGRESS_FILE_ENV] = progress_file(work)
    env.setdefault(DISPLAY_ENV, "1")
    # evcxr's allocator (mimalloc) gives freed memory back at once and commits its arenas
    # as it uses them: 639 -> 564 MiB for a kernel after notebook 2's first eight cells,
    # no measurable change in a cell's time (docs/performance.md)
    env.setdefault("MIMALLOC_PURGE_DELAY", "0")
    env.setdefault("MIMALLOC_ARENA_EAGER_COMMIT", "0")
    # rust-analyzer (evcxr's variable types, Tab completion, hover) leaves out what no
    # cell's value can have a type from (evcxr/README.md): of the standard library, its
    # SIMD intrinsics (`core::arch`), its platform layer (`std::sys`, `std::os`), its
    # test crates and runtime-only crates; of mlp-core's dependencies, those it uses inside
    # only (a `:dep` of one of them brings it back). 474 -> 272 MiB of evcxr after
    # notebook 2; the types of 30 common std and ndarray values the same
    # (docs/performance.md, "What rust-analyzer holds")
    env.setdefault("EVCXR_ANALYSIS_SKIP", ":".join(ANALYSIS_SKIP))
    env.setdefault("EVCXR_ANALYSIS_SKIP_CRATES", ",".join(ANALYSIS_SKIP_CRATES))
    # rustc writes each cell's library with a relative run path to the standard library
    # that counts one directory too many; it only resolves when the work directory is
    # one level below / (evcxr's default, /tmp/xyz). The loader path finds it anywhere.
    libdir = subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True, text=True).stdout.strip()
    if libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [libdir, env.get("LD_LIBRARY_PATH")] if p)
    return env


def progress_file(work):
    """Where rustc_progress.sh notes each library cargo compiles."""
    return os.path.join(os.path.dirname(work), "compiling.txt")


def panic_file(work):
    """Where mlp-core's panic hook writes the last panic's full report (src/kernel.rs)."""
    return os.path.join(os.path.dirname(work), "last-panic.txt")
