//! Audit files on disk: created readable by their owner only (files 0600, folders 0700 on Unix), and
//! read back a line at a time with a bound on the line's length.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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

/// Moves a last line without its newline out of the log, into `<path>.torn`.
pub(crate) fn set_aside_torn_tail(path: &Path) -> io::Result<()> {
    let Ok(mut file) = OpenOptions::new().read(true).write(true).open(path) else {
        return Ok(());
    };
    let size = file.metadata()?.len();
    if size == 0 {
        return Ok(());
    }
    let mut last = [0];
    file.seek(SeekFrom::Start(size - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Find where the last line starts, reading backwards in blocks.
    let mut start = size;
    let mut block = vec![0; 64 * 1024];
    'search: while start > 0 {
        let from = start.saturating_sub(block.len() as u64);
        let length = usize::try_from(start - from).unwrap_or(block.len());
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block[..length])?;
        if let Some(newline) = block[..length].iter().rposition(|byte| *byte == b'\n') {
            start = from + newline as u64 + 1;
            break 'search;
        }
        start = from;
    }
    let mut torn = Vec::new();
    file.seek(SeekFrom::Start(start))?;
    file.read_to_end(&mut torn)?;
    let mut aside = open_append_private(&sibling(path, "torn"))?;
    aside.write_all(&torn)?;
    aside.write_all(b"\n")?;
    aside.sync_all()?;
    file.set_len(start)?;
    file.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        bytes = torn.len(),
        "the audit log ended in a line cut short; moved it to the .torn file next to the log"
    );
    Ok(())
}

/// `<path>.<suffix>`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
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
