//! What JSON text needs escaped: strings without a byte to escape are written as they are, between
//! quotes, in one pass instead of `serde_json`'s byte-by-byte one.

/// Whether a byte of `text` must be escaped in a JSON string: a control character, a quote or a
/// backslash.
#[must_use]
pub fn needs_json_escaping(text: &str) -> bool {
    // A fold without an early exit or a branch, which the compiler turns into a vector loop.
    text.bytes()
        .fold(0_u8, |found, byte| found | u8::from(byte < 0x20) | u8::from(byte == b'"') | u8::from(byte == b'\\'))
        != 0
}

#[cfg(test)]
mod tests {
    use super::needs_json_escaping;

    #[test]
    fn a_byte_to_escape_is_found_wherever_it_is() {
        let escaped = |byte: u8| byte < 0x20 || byte == b'"' || byte == b'\\';
        // Every ASCII byte, at every place of strings shorter and longer than a word, among bytes that need
        // no escaping, among bytes next to the bounds (0x1f/0x20, 0x7f) and among multi-byte characters.
        for filler in ["a", " ", "!", "#", "[", "]", "\u{7f}", "é", "✓"] {
            for len in 1..=19 {
                for at in 0..len {
                    for byte in 0..0x80_u8 {
                        let mut text: Vec<&str> = vec![filler; len];
                        let byte_text = char::from(byte).to_string();
                        text[at] = &byte_text;
                        let text = text.concat();
                        assert_eq!(
                            needs_json_escaping(&text),
                            escaped(byte) || filler.bytes().any(escaped),
                            "byte {byte:#04x} at {at} of {len} among {filler:?}"
                        );
                    }
                }
            }
        }
        assert!(!needs_json_escaping(""));
    }
}
