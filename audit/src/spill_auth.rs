//! Authentication of the overflow spill file, whose events are not chained yet: each line carries an
//! HMAC-SHA256 tag under a key derived from the signing key, which the spill folder does not hold, so
//! that whoever can write the folder cannot inject events that the writer would then chain as genuine.

use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;

use super::keys::unhex;
use hardened_core::support::hex;

/// Hex digits of a tag.
const TAG_DIGITS: usize = 64;

/// Tags and checks overflow lines: `<tag> <json>`.
#[derive(Clone)]
pub(crate) struct SpillAuth {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SpillAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpillAuth")
    }
}

impl SpillAuth {
    pub(crate) fn new(key: [u8; 32]) -> SpillAuth {
        SpillAuth { mac: <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key length") }
    }

    /// The tag of `json`, in hex.
    pub(crate) fn tag(&self, json: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(json);
        hex(&mac.finalize().into_bytes())
    }

    /// The JSON of a tagged line whose tag is right.
    pub(crate) fn check<'a>(&self, line: &'a [u8]) -> Result<&'a [u8], String> {
        let Some((tag, json)) = split(line) else {
            return Err("no authentication tag: the line was not written by this pipeline's writer".to_owned());
        };
        let tag = std::str::from_utf8(tag).ok().and_then(unhex::<32>).ok_or("a malformed authentication tag")?;
        let mut mac = self.mac.clone();
        mac.update(json);
        mac.verify_slice(&tag)
            .map_err(|_| "the authentication tag does not match: the line was forged or altered".to_owned())?;
        Ok(json)
    }

    /// The JSON of a line, tagged or not.
    pub(crate) fn strip(line: &[u8]) -> &[u8] {
        split(line).map_or(line, |(_, json)| json)
    }
}

fn split(line: &[u8]) -> Option<(&[u8], &[u8])> {
    (line.len() > TAG_DIGITS && line[TAG_DIGITS] == b' ' && line[..TAG_DIGITS].iter().all(u8::is_ascii_hexdigit))
        .then(|| (&line[..TAG_DIGITS], &line[TAG_DIGITS + 1..]))
}
