//! evcxr_jupyter's own entry point; what differs is the evcxr it links (see Cargo.toml).

fn main() -> anyhow::Result<()> {
    evcxr_jupyter::main()
}
