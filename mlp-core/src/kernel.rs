//! Panic reports for the notebooks' kernel.
//!
//! evcxr runs a notebook's cells in a process of its own, which prints a panic's report
//! with the runtime's backtrace on standard error, and passes that error stream on
//! after the cell has finished (so a headless run or the browser can miss it). When this
//! library is loaded into that process (evcxr sets `EVCXR_IS_RUNTIME`), it installs a
//! panic hook that prints one line instead, on standard output, which evcxr delivers in
//! order: a marker and the message and location as JSON. The kernel relay
//! (`mlp_lab/kernel/`) turns that line into the report the student reads, naming
//! the notebook function the location is in. The full backtrace is written to the file
//! `MLP_PANIC_FILE` names, for `:backtrace`.
//!
//! A panic inside a library (ndarray's `dot` on mismatched shapes) has its location in
//! the library's source, not the notebook's. So the line also carries the stack's return
//! addresses that lie in the cell's own shared object (where evcxr links the notebook's
//! code, mlp-core and ndarray together), as offsets into that file: the relay maps them
//! to lines with `addr2line` (the kernel compiles the notebook's code with line tables)
//! and names the first one in the notebook's code. The standard library's backtrace
//! cannot: it lists the process's shared objects once, at its first backtrace, so the
//! cells loaded after that show as `<unknown>`.

/// The start of a panic report line on standard output.
pub const PANIC_MARKER: &str = "MLP_KERNEL_PANIC ";

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL_ON_LOAD: extern "C" fn() = install_on_load;

#[cfg(target_os = "linux")]
extern "C" fn install_on_load() {
    if std::env::var_os("EVCXR_IS_RUNTIME").is_some() {
        std::panic::set_hook(Box::new(report));
    }
}

fn report(info: &std::panic::PanicHookInfo<'_>) {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let mut line = serde_json::json!({ "message": message, "location": location });
    #[cfg(target_os = "linux")]
    if let Some((library, offsets)) = stack::in_this_library() {
        line["library"] = library.into();
        line["frames"] = offsets.into();
    }
    println!("{PANIC_MARKER}{line}");
    if let Some(path) = std::env::var_os("MLP_PANIC_FILE") {
        let backtrace = std::backtrace::Backtrace::force_capture();
        let thread = std::thread::current().name().unwrap_or("<unnamed>").to_string();
        let text = format!(
            "thread '{thread}' panicked at {}:\n{message}\nstack backtrace:\n{backtrace}",
            location.as_deref().unwrap_or("an unknown location")
        );
        // a report that cannot be written leaves only :backtrace without it
        let _ = std::fs::write(path, text);
    }
}

/// The call stack, innermost first, as offsets into the shared object this code is in.
#[cfg(target_os = "linux")]
mod stack {
    use std::ffi::{CStr, c_char, c_int, c_void};

    #[repr(C)]
    struct UnwindContext {
        _private: [u8; 0],
    }

    #[repr(C)]
    struct DlInfo {
        fname: *const c_char,
        fbase: *mut c_void,
        sname: *const c_char,
        saddr: *mut c_void,
    }

    type Trace = extern "C" fn(*mut UnwindContext, *mut c_void) -> c_int;

    unsafe extern "C" {
        // the unwinder the standard library unwinds with (libgcc_s), and the loader's
        fn _Unwind_Backtrace(trace: Trace, arg: *mut c_void) -> c_int;
        fn _Unwind_GetIP(context: *mut UnwindContext) -> usize;
        fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
    }

    /// At most this many frames are looked at.
    const MAX_FRAMES: usize = 256;
    const URC_NO_REASON: c_int = 0;
    const URC_END_OF_STACK: c_int = 5;

    extern "C" fn push(context: *mut UnwindContext, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the `Vec` `in_this_library` passes, alive during the walk
        let ips = unsafe { &mut *(arg as *mut Vec<usize>) };
        // SAFETY: `context` is the unwinder's, valid during this call
        let ip = unsafe { _Unwind_GetIP(context) };
        if ip == 0 || ips.len() >= MAX_FRAMES {
            return URC_END_OF_STACK;
        }
        ips.push(ip);
        URC_NO_REASON
    }

    /// Where a code address is: its shared object's path and load address.
    fn object_of(addr: usize) -> Option<(String, usize)> {
        let mut info = DlInfo {
            fname: std::ptr::null(),
            fbase: std::ptr::null_mut(),
            sname: std::ptr::null(),
            saddr: std::ptr::null_mut(),
        };
        // SAFETY: dladdr only reads the loader's tables and fills `info`
        if unsafe { dladdr(addr as *const c_void, &mut info) } == 0 || info.fname.is_null() {
            return None;
        }
        // SAFETY: dladdr gave a NUL-terminated path that lives as long as the object
        let path = unsafe { CStr::from_ptr(info.fname) }.to_string_lossy().into_owned();
        Some((path, info.fbase as usize))
    }

    /// This shared object's path and the offsets into it (call sites: the return
    /// address less one) of the frames on the stack that are in it, innermost first.
    pub(super) fn in_this_library() -> Option<(String, Vec<usize>)> {
        let (library, base) = object_of(in_this_library as *const () as usize)?;
        let mut ips: Vec<usize> = Vec::new();
        // SAFETY: `push` only reads the context and appends to `ips`
        unsafe { _Unwind_Backtrace(push, &mut ips as *mut Vec<usize> as *mut c_void) };
        let offsets = ips
            .into_iter()
            .filter(|&ip| object_of(ip).is_some_and(|(_, b)| b == base))
            .map(|ip| ip - 1 - base)
            .collect();
        Some((library, offsets))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_stack_is_found_in_this_object() {
            let (library, offsets) = in_this_library().expect("dladdr knows this code");
            assert!(!library.is_empty());
            // this test function and its callers in the test binary, at least
            assert!(offsets.len() >= 2, "{offsets:?}");
            let (_, base) = object_of(in_this_library as *const () as usize).unwrap();
            let here = the_stack_is_found_in_this_object as *const () as usize - base;
            assert!(
                offsets.iter().any(|&o| o >= here && o < here + 4096),
                "{here:#x} {offsets:x?}"
            );
        }
    }
}
