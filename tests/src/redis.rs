//! Redis for the tests of global rate limiters: the shared server of `REDIS_URL`, a namespace of the
//! test run's own in it, and servers of a test's own that it can stop and restart.
//!
//! Every helper here panics, with the reason, when it cannot do what the test needs: that is the test
//! failing.
#![allow(clippy::missing_panics_doc, reason = "the module says it once: a helper that cannot set up fails the test")]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hardened::clock::Clock;
use hardened::rate_limit::{RateConfig, RateLimiter, Scope};

/// The service name of this test process, and so the namespace of its limiters' keys:
/// `hardened:rate:<service>:<limiter>`. Unique to the run, so that runs sharing a server never collide;
/// child processes take it through `OTEL_SERVICE_NAME`.
pub fn service() -> &'static str {
    static SERVICE: OnceLock<String> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let service = format!("hardened-tests-{}", uuid::Uuid::now_v7().simple());
        assert!(hardened::audit::set_service_name(service.clone()), "the service name was set before the test's");
        service
    })
}

/// A limiter name of the test's own: `prefix` and a unique suffix.
#[must_use]
pub fn unique_name(prefix: &str) -> &'static str {
    Box::leak(format!("{prefix}-{}", uuid::Uuid::now_v7().simple()).into_boxed_str())
}

/// The Redis key of the global limiter `name` of this test process.
#[must_use]
pub fn key(name: &str) -> String {
    format!("hardened:rate:{}:{name}", service())
}

/// `calls` per `period`, a burst of `burst`, global, at `redis_url` (or `REDIS_URL`).
#[must_use]
pub fn global_config(calls: u32, period: Duration, burst: u32, redis_url: Option<String>) -> RateConfig {
    let mut config = RateConfig::per_second(calls);
    config.period = period;
    config.burst = burst;
    config.scope = Scope::Global;
    config.redis_url = redis_url;
    config
}

/// A global limiter of the test's own, named after `prefix`, in this run's namespace.
#[must_use]
pub fn global_limiter(prefix: &str, config: RateConfig) -> &'static RateLimiter {
    service();
    Box::leak(Box::new(RateLimiter::new(unique_name(prefix), config, Clock::system())))
}

/// A connection to the server at `url`, to look at keys.
pub async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("a Redis URL");
    client.get_multiplexed_async_connection().await.expect("the Redis server answers")
}

/// A `redis-server` of the test's own, on a free port, without persistence: stopped, frozen and
/// restarted by its process id, never by name, so that other servers are left alone.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port, and waits until it accepts connections.
    #[must_use]
    pub fn start() -> RedisServer {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port();
        let mut server = RedisServer { port, child: None };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port, after [`RedisServer::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server runs already");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed?)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not accept connections on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("the server is killed");
            child.wait().expect("the server exits");
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a frozen server too.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
