//! Lowercase hexadecimal, for hashes, signatures and trace ids.

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Digits into bytes of the final length, then one check that they are text: pushing `char`s would check
    // the capacity and encode each one.
    let mut text = vec![0; bytes.len() * 2];
    for (digits, byte) in text.chunks_exact_mut(2).zip(bytes) {
        digits[0] = DIGITS[usize::from(byte >> 4)];
        digits[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    String::from_utf8(text).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::hex;

    #[test]
    fn every_byte_is_written_as_two_lowercase_digits() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let expected = every_byte.iter().fold(String::new(), |mut text, byte| {
            write!(text, "{byte:02x}").expect("writing to a String succeeds");
            text
        });
        assert_eq!(hex(&every_byte), expected);
        assert_eq!(hex(&[]), "");
    }
}
