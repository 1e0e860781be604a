//! `span = false` and `metrics = false` turn one half off; the other half still works.
use hardened::hardened;

#[hardened(span = false)]
fn no_span(x: u8) -> u8 {
    x + 1
}

#[hardened(metrics = false, fields(x))]
fn no_metrics(x: u8) -> u8 {
    x + 2
}

#[hardened(span = false, metrics = false)]
async fn neither(x: u8) -> Result<u8, String> {
    x.checked_add(3).ok_or_else(|| "overflow".to_owned())
}

#[hardened(span, metrics)]
fn both_said(x: u8) -> u8 {
    x
}

fn main() {
    assert_eq!(no_span(1), 2);
    assert_eq!(no_metrics(1), 3);
    assert_eq!(both_said(1), 1);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(neither(1)), Ok(4));
    let site = hardened::sites().iter().find(|site| site.name() == "no_metrics").expect("`no_metrics` is registered");
    assert!(!site.metrics_enabled());
    let metrics = hardened::metrics::render();
    assert!(metrics.contains(r#"function="no_span""#), "{metrics}");
    assert!(!metrics.contains(r#"function="no_metrics""#), "{metrics}");
}
