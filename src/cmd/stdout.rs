//! Everything a command prints goes to stdout through [`print`]: one buffered writer, and a
//! reader that went away (`| head`, `| true`: the write fails with EPIPE, since Rust ignores
//! SIGPIPE) ends the output quietly — the command goes on to its own exit code as if it had
//! printed everything. `println!` would panic there instead; `cmd/` uses none. JSON documents
//! go through [`json`]: the serializer writes into a buffer of a known type (no call through
//! `dyn Write` for each quote and comma), flushed in large pieces.

use std::io::{self, BufWriter, Write};

use serde::Serialize;

/// The JSON writer's buffer: a plan at 100 000 images is ≈ 80 MB of pretty JSON, written in
/// pieces of this size (two `write` calls each through stdout's line buffer).
const JSON_BUFFER: usize = 256 * 1024;

use super::CmdError;

/// Run `write` on a buffered, locked stdout and flush it; a closed stdout is no error.
pub fn print(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), CmdError> {
    print_to(&mut io::stdout().lock(), write)
}

/// [`print`] into `out`.
fn print_to(
    out: &mut dyn Write,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), CmdError> {
    let mut buffered = BufWriter::new(out);
    written(write(&mut buffered).and_then(|()| buffered.flush()))
}

/// Print `value` as pretty JSON and a newline.
pub fn json(value: &impl Serialize) -> Result<(), CmdError> {
    json_to(io::stdout().lock(), value)
}

/// [`json`] into `out`.
fn json_to<W: Write>(out: W, value: &impl Serialize) -> Result<(), CmdError> {
    let mut buffered = BufWriter::with_capacity(JSON_BUFFER, out);
    written(
        serde_json::to_writer_pretty(&mut buffered, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(buffered))
            .and_then(|()| buffered.flush()),
    )
}

/// A closed stdout is no error; any other write error is.
fn written(result: io::Result<()>) -> Result<(), CmdError> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other
            .map_err(|e| CmdError::Other(anyhow::Error::from(e).context("cannot write to stdout"))),
    }
}

/// Print `lines`, one per line.
pub fn lines<S: AsRef<str>>(lines: &[S]) -> Result<(), CmdError> {
    print(|out| {
        lines
            .iter()
            .try_for_each(|l| writeln!(out, "{}", l.as_ref()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that is gone after `room` bytes, or a disk that is full.
    struct Closed {
        kind: io::ErrorKind,
    }

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.kind.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_that_went_away_is_no_error_but_other_write_errors_are() {
        let big = "x".repeat(100_000);
        let mut gone = Closed {
            kind: io::ErrorKind::BrokenPipe,
        };
        print_to(&mut gone, |out| writeln!(out, "{big}")).expect("EPIPE is quiet");
        let mut full = Closed {
            kind: io::ErrorKind::StorageFull,
        };
        let err = print_to(&mut full, |out| writeln!(out, "{big}")).expect_err("ENOSPC fails");
        assert!(
            format!("{err:#}").contains("cannot write to stdout"),
            "{err:#}"
        );
        assert_eq!(err.exit_code(), crate::exit::ENVIRONMENT);
        let big = vec![big; 10];
        json_to(
            Closed {
                kind: io::ErrorKind::BrokenPipe,
            },
            &big,
        )
        .expect("EPIPE is quiet");
        let full = Closed {
            kind: io::ErrorKind::StorageFull,
        };
        let err = json_to(full, &big).expect_err("ENOSPC fails");
        assert_eq!(err.exit_code(), crate::exit::ENVIRONMENT);
    }

    #[test]
    fn json_is_pretty_with_a_final_newline() {
        let mut out = Vec::new();
        json_to(&mut out, &serde_json::json!({ "a": [1] })).expect("into memory");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\n  \"a\": [\n    1\n  ]\n}\n"
        );
    }
}
