//! Every form of `slo`: numbers written inline, a name shared without numbers, a latency that is one of
//! the function's own buckets, on a sync function and on a method of an annotated `impl` block.
use std::time::Duration;

use hardened::hardened;

#[derive(Debug)]
struct ChatError;

#[hardened(slo(name = "chat", success = 99.9, latency = "2.5s", latency_target = 99))]
async fn answer(question: &str) -> Result<usize, ChatError> {
    Ok(question.len())
}

#[hardened(slo = "chat")]
async fn follow_up(question: &str) -> Result<usize, ChatError> {
    Ok(question.len())
}

#[hardened(buckets = [0.05, 0.75, 3], slo(name = "parse", success = 99, latency = "750ms", latency_target = 95.5))]
fn parse(text: &str) -> usize {
    text.len()
}

struct Store;

#[hardened(kind = "store", slo = "storage")]
impl Store {
    fn get(&self, key: &str) -> usize {
        key.len()
    }

    #[hardened(skip)]
    fn untracked(&self) {}
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(answer("hi")).unwrap(), 2);
    assert_eq!(runtime.block_on(follow_up("hey")).unwrap(), 3);
    assert_eq!(parse("abc"), 3);
    assert_eq!(Store.get("k"), 1);
    Store.untracked();
    let mut members: Vec<(&str, &str)> =
        hardened::__private::SLO_MEMBERS.iter().map(|member| (member.name, member.site().name())).collect();
    members.sort_unstable();
    assert_eq!(members, [("chat", "answer"), ("chat", "follow_up"), ("parse", "parse"), ("storage", "get")]);
    let parse = hardened::__private::SLO_MEMBERS.iter().find(|member| member.name == "parse").unwrap();
    assert_eq!(parse.settings.latency, Some(Duration::from_millis(750)));
    assert_eq!(parse.settings.latency_target, Some(95.5));
}
