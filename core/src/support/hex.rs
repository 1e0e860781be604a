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
    // Digits into a buffer on the stack, then appended with one check that they are text: pushing `char`s
    // would check the capacity and encode each one.
    let mut buffer = [0; 64];
    for chunk in bytes.chunks(buffer.len() / 2) {
        let digits = &mut buffer[..chunk.len() * 2];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        text.push_str(std::str::from_utf8(digits).expect("hex digits are ASCII"));
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
        let mut long = String::new();
        push_hex(&mut long, &every_byte);
        assert_eq!(long, expected, "longer than one buffer");
    }
}
