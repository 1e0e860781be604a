//! `histogram = false` keeps a function's call counters and leaves its duration histogram out; a method
//! of an annotated `impl` block can take it back with `histogram = true`.
use hardened::hardened;

#[hardened(kind = "tool", histogram = false)]
fn counted(x: u8) -> u8 {
    x + 1
}

#[hardened(histogram = false, slo(name = "uptime", success = 99.9))]
async fn succeeds(x: u8) -> Result<u8, String> {
    Ok(x)
}

struct Store;

#[hardened(kind = "store", histogram = false)]
impl Store {
    fn get(&self) -> u8 {
        1
    }

    #[hardened(histogram = true, buckets = [0.001, 0.1])]
    fn put(&self) -> u8 {
        2
    }
}

fn main() {
    assert_eq!(counted(1), 2);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    assert_eq!(runtime.block_on(succeeds(3)), Ok(3));
    assert_eq!((Store.get(), Store.put()), (1, 2));
    let site = |name: &str| hardened::sites().iter().find(|site| site.name() == name).expect("registered");
    assert!(!site("counted").has_histogram());
    assert!(!site("get").has_histogram());
    assert!(site("put").has_histogram());
    assert_eq!(site("put").buckets().len(), 2);
    let metrics = hardened::metrics::render();
    assert!(metrics.contains(r#"hardened_calls_total{function="counted""#), "{metrics}");
    assert!(!metrics.contains(r#"hardened_call_duration_seconds_count{function="counted""#), "{metrics}");
    assert!(metrics.contains(r#"hardened_call_duration_seconds_count{function="put""#), "{metrics}");
}
