use hardened::hardened;

#[derive(Debug)]
struct ChatError;

#[hardened(slo(name = "chat", sucess = 99.9))]
async fn answer(question: &str) -> Result<usize, ChatError> {
    Ok(question.len())
}

fn main() {
    let _ = answer("a");
}
