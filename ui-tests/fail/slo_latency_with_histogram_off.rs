use hardened::hardened;

#[derive(Debug)]
struct ChatError;

#[hardened(histogram = false, slo(name = "chat", latency = "1s", latency_target = 99))]
async fn answer(question: &str) -> Result<usize, ChatError> {
    Ok(question.len())
}

fn main() {
    let _ = answer("a");
}
