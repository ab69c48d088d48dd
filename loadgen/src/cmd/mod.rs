//! One module per subcommand that is more than a dispatch line.

pub mod capacity;
