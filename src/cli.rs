//! The command-line interface (clap derive). Doc comments are the help text.
