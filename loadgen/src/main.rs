//! The `loadgen` binary: a thin shell over the library.
fn main() -> std::process::ExitCode {
    loadgen::app::main()
}
