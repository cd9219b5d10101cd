//! Panic reports for the notebooks' kernel.
//!
//! evcxr runs a notebook's cells in a process of its own, which prints a panic's report
//! with the runtime's backtrace on standard error, and passes that error stream on
//! after the cell has finished (so a headless run or the browser can miss it). When this
//! library is loaded into that process (evcxr sets `EVCXR_IS_RUNTIME`), it installs a
//! panic hook that prints one line instead, on standard output, which evcxr delivers in
//! order: a marker and the message and location as JSON. The kernel relay
//! (`tools/mlp_kernel.py`) turns that line into the report the student reads, naming
//! the notebook function the location is in. The full backtrace is written to the file
//! `MLP_PANIC_FILE` names, for `:backtrace`.

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
    let line = serde_json::json!({ "message": message, "location": location });
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
