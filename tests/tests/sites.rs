//! The call-site registry: every annotated function is listed before its first call.

use hardened::hardened;

#[hardened(kind = "tool", level = "debug", buckets = [0.1, 1])]
fn listed_tool() {}

#[hardened]
async fn listed_async() {}

#[test]
fn every_annotated_function_is_listed_with_where_it_lives() {
    let site = hardened::sites().iter().find(|site| site.name() == "listed_tool").expect("listed before any call");
    assert_eq!(site.function(), "listed_tool");
    assert_eq!(site.module(), "sites");
    assert_eq!(site.kind(), "tool");
    assert_eq!(site.file(), "tests/tests/sites.rs");
    assert_eq!(site.line(), 6, "the line of the function's name");
    assert_eq!(site.options(), r#"kind = "tool", level = "debug", buckets = [0.1, 1]"#);
    assert!(site.metrics_enabled());
    let buckets: Vec<_> = site.buckets().collect();
    assert_eq!(buckets, [std::time::Duration::from_millis(100), std::time::Duration::from_secs(1)]);

    let names: Vec<&str> = hardened::sites().iter().map(hardened::Site::name).collect();
    assert_eq!(names.len(), 2, "exactly the two sites of this test binary: {names:?}");
    assert!(names.contains(&"listed_async"));
    assert_eq!(
        hardened::sites().iter().find(|site| site.name() == "listed_async").map(hardened::Site::kind),
        Some("function")
    );
}
