//! Lowercase hexadecimal, for hashes, signatures and trace ids.

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::new();
    push_hex(&mut text, bytes);
    text
}

/// Appends `bytes` to `text` in lowercase hex: into room the caller keeps, where [`hex`] allocates.
pub fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.reserve(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::{hex, push_hex};

    #[test]
    fn every_byte_is_written_as_two_lowercase_digits() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let expected = every_byte.iter().fold(String::new(), |mut text, byte| {
            write!(text, "{byte:02x}").expect("writing to a String succeeds");
            text
        });
        assert_eq!(hex(&every_byte), expected);
        assert_eq!(hex(&[]), "");
        let mut text = String::from("sha256:");
        push_hex(&mut text, &[0x0f, 0xa0]);
        assert_eq!(text, "sha256:0fa0", "appended after what is there");
    }
}
