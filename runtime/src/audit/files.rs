//! Audit files on disk: created readable by their owner only (files 0600, folders 0700 on Unix), and
//! read back a line at a time with a bound on the line's length.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead};
use std::path::Path;

/// The longest line of an audit file read back (log, rotated files, checkpoints, spill files): 1 MiB. A
/// longer line is reported as not a record, and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Creates `path` and its missing parents, each created 0700.
pub(crate) fn create_private_dir_all(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Options that create a file 0600.
pub(crate) fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Opens `path` for appending, creating it 0600.
pub(crate) fn open_append_private(path: &Path) -> io::Result<File> {
    private_options().create(true).append(true).open(path)
}

/// Creates `path`, 0600, failing if it exists.
pub(crate) fn create_new_private(path: &Path) -> io::Result<File> {
    private_options().write(true).create_new(true).open(path)
}

/// Creates or truncates `path`, 0600.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    private_options().write(true).create(true).truncate(true).open(path)
}

/// One line read by [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The end of the input.
    End,
    /// A line in the buffer; `complete` when it ended in a newline (kept in the buffer).
    Read {
        /// Whether the line ended in a newline.
        complete: bool,
    },
    /// A line longer than the bound: skipped up to its newline (or the end), its length in bytes.
    TooLong(u64),
}

/// Reads one line into `buffer` (cleared first), holding at most `max` bytes of it.
pub(crate) fn read_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buffer.clear();
    let mut skipped: Option<u64> = None;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(match skipped {
                Some(length) => Line::TooLong(length),
                None if buffer.is_empty() => Line::End,
                None => Line::Read { complete: false },
            });
        }
        let (taken, newline) = match available.iter().position(|byte| *byte == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        match &mut skipped {
            Some(length) => *length += taken as u64,
            None if buffer.len() + taken > max => {
                skipped = Some((buffer.len() + taken) as u64);
                buffer.clear();
                buffer.shrink_to(max.min(64 * 1024));
            }
            None => buffer.extend_from_slice(&available[..taken]),
        }
        reader.consume(taken);
        if newline {
            return Ok(match skipped {
                Some(length) => Line::TooLong(length),
                None => Line::Read { complete: true },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Line, read_line};

    #[test]
    fn a_line_longer_than_the_bound_is_skipped_to_its_newline() {
        let mut input: &[u8] = b"short\nmuch too long\nend";
        let mut buffer = Vec::new();
        assert_eq!(read_line(&mut input, &mut buffer, 8).expect("a slice reads"), Line::Read { complete: true });
        assert_eq!(buffer, b"short\n");
        assert_eq!(read_line(&mut input, &mut buffer, 8).expect("a slice reads"), Line::TooLong(14));
        assert_eq!(read_line(&mut input, &mut buffer, 8).expect("a slice reads"), Line::Read { complete: false });
        assert_eq!(buffer, b"end");
        assert_eq!(read_line(&mut input, &mut buffer, 8).expect("a slice reads"), Line::End);
    }
}
