//! `hardened::redact::urls`, checked with generated text: it never panics, takes time in proportion to
//! the text, masks a secret planted in any part of a URL wherever the URL stands, and what it masked
//! stays masked when masked again.

use std::time::{Duration, Instant};

use hardened::redact::urls;
use proptest::prelude::*;

const BOUNDED: Duration = Duration::from_secs(1);

fn masked_in_bounded_time(text: &str) -> String {
    let started = Instant::now();
    let masked = urls(text).into_owned();
    let took = started.elapsed();
    assert!(took < BOUNDED, "masking {} bytes took {took:?}", text.len());
    masked
}

/// Text around a URL: anything but what would run on into the URL's authority.
fn surrounding() -> impl Strategy<Value = String> {
    "[ -~\u{e9}\u{65e5}]{0,40}".prop_map(|text| text.replace("://", ""))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_masked_without_a_panic_and_stays_masked(text in any::<String>()) {
        let once = masked_in_bounded_time(&text);
        let twice = masked_in_bounded_time(&once);
        prop_assert!(twice.matches("***").count() >= once.matches("***").count());
    }

    #[test]
    fn text_made_of_url_pieces_is_masked_without_a_panic(
        pieces in proptest::collection::vec(
            prop_oneof![Just("://"), Just("@"), Just("?"), Just("#"), Just("&"), Just("="), Just(")"), Just("("),
                        Just("["), Just("]"), Just(" "), Just("."), Just("a"), Just("é"), Just("/"), Just(":")],
            0..200,
        )
    ) {
        // Masking a second time may take a bracket that closed the URL into a masked query value: what
        // was masked stays masked, and nothing else is asked of it.
        let text = pieces.concat();
        let once = masked_in_bounded_time(&text);
        let twice = masked_in_bounded_time(&once);
        prop_assert!(twice.matches("***").count() >= once.matches("***").count());
    }

    #[test]
    fn a_secret_planted_in_any_part_of_a_url_is_masked(
        before in surrounding(),
        after in surrounding(),
        scheme in "[a-z][a-z0-9+.-]{0,8}",
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        path in "(/[a-zA-Z0-9._~-]{0,10}){0,3}",
        secret in "[A-Za-z0-9_-]{12,24}",
        place in 0..4usize,
    ) {
        let url = match place {
            0 => format!("{scheme}://user:{secret}@{host}{path}"),
            1 => format!("{scheme}://{secret}@{host}{path}"),
            2 => format!("{scheme}://{host}{path}?page=2&token={secret}&q=x"),
            _ => format!("{scheme}://{host}{path}#access_token={secret}"),
        };
        let text = format!("{before} {url} {after}");
        let masked = masked_in_bounded_time(&text);
        prop_assert!(!masked.contains(&secret), "{} -> {}", text, masked);
        prop_assert!(masked.contains(&host), "the host stays: {}", masked);
    }
}

#[test]
fn adversarial_text_is_masked_in_time_in_proportion_to_its_length() {
    // Large enough that a cost quadratic in the length would take minutes.
    let size = 1 << 18;
    for text in [
        format!("a://{}", ")".repeat(size)),
        format!("a://x{}", ".".repeat(size)),
        "a://".repeat(size / 4),
        format!("{}://", "a".repeat(size)),
        "a://b@c?d=e#f ".repeat(size / 14),
        format!("a://{}", "@".repeat(size)),
    ] {
        masked_in_bounded_time(&text);
    }
}
