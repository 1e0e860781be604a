//! `agent_sessions_active` against the real `agent-server` over HTTP: at 0 from the start, one more for
//! each session opened, one fewer for each closed, and a refused session is not counted. (Ending idle
//! sessions, which a clock decides, is tested with a manual time in `sessions.rs`.)

mod support;

use support::{Server, client};

/// The value of `agent_sessions_active` at `/metrics`.
async fn active_sessions(server: &Server) -> i64 {
    let metrics = client().get(server.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let value = metrics.lines().find_map(|line| line.strip_prefix("agent_sessions_active "));
    value.unwrap_or_else(|| panic!("no agent_sessions_active in {metrics}")).parse().expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_sessions_gauge_follows_sessions_opened_and_closed() {
    let mut server = Server::start();
    assert_eq!(active_sessions(&server).await, 0, "the series is there before any session");

    let developer = server.open_session("dev-key").await;
    let reader = server.open_session("reader-key").await;
    assert_eq!(active_sessions(&server).await, 2);

    let (status, _) = server
        .call(reqwest::Method::DELETE, &format!("/v1/sessions/{developer}"), "dev-key", None)
        .await
        .expect("an answer");
    assert!((200..300).contains(&status), "closed: {status}");
    assert_eq!(active_sessions(&server).await, 1);
    // Another key cannot close the reader's session: it stays counted.
    let (status, _) = server
        .call(reqwest::Method::DELETE, &format!("/v1/sessions/{reader}"), "dev-key", None)
        .await
        .expect("an answer");
    assert!(status >= 400, "refused: {status}");
    assert_eq!(active_sessions(&server).await, 1);
    assert!(server.stop().success());
}
