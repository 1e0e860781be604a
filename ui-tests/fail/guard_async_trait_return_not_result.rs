use async_trait::async_trait;
use hardened::hardened;

#[async_trait]
trait Scores {
    async fn score(&self, id: u64) -> u32;
}

struct Leaderboard;

#[async_trait]
impl Scores for Leaderboard {
    #[hardened(breaker = "scores")]
    async fn score(&self, id: u64) -> u32 {
        u32::try_from(id).unwrap_or(u32::MAX)
    }
}

fn main() {
    let _ = Leaderboard.score(1);
}
