use hardened::hardened;

#[derive(Debug)]
struct ChatError;

#[hardened(buckets = [0.5, 1.0], slo(name = "chat", latency = "750ms", latency_target = 99))]
async fn answer(question: &str) -> Result<usize, ChatError> {
    Ok(question.len())
}

fn main() {
    let _ = answer("a");
}
