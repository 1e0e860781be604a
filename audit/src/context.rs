//! The actor of the events recorded inside a task: who, in which session, from where.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

tokio::task_local! {
    // Shared: a call's event holds the scope's actor until the audit writer's thread completes the event,
    // rather than copying its strings on the request's thread.
    static ACTOR: Arc<AuditContext>;
}

/// Who is acting: set per request by the HTTP layer, or by the application with [`scope`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// The authenticated user.
    pub user_id: Option<String>,
    /// The user's session.
    pub session_id: Option<String>,
    /// The client's address.
    pub ip_address: Option<IpAddr>,
}

impl AuditContext {
    /// A context for `user_id`.
    #[must_use]
    pub fn user(user_id: impl Into<String>) -> AuditContext {
        AuditContext { user_id: Some(user_id.into()), ..AuditContext::default() }
    }

    /// Sets the session.
    #[must_use]
    pub fn session(mut self, session_id: impl Into<String>) -> AuditContext {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the client's address.
    #[must_use]
    pub fn ip(mut self, ip_address: IpAddr) -> AuditContext {
        self.ip_address = Some(ip_address);
        self
    }
}

impl AuditContext {
    /// Whether a field is unset, which the current scope would then fill.
    pub(crate) fn lacks_any(&self) -> bool {
        self.user_id.is_none() || self.session_id.is_none() || self.ip_address.is_none()
    }

    /// This actor with the fields it lacks taken from `scope`: only those are copied.
    pub(crate) fn or_from(mut self, scope: &AuditContext) -> AuditContext {
        if self.user_id.is_none() {
            self.user_id.clone_from(&scope.user_id);
        }
        if self.session_id.is_none() {
            self.session_id.clone_from(&scope.session_id);
        }
        self.ip_address = self.ip_address.or(scope.ip_address);
        self
    }
}

/// Runs `future` with `context` as the actor of every event created inside it (by
/// [`AuditEvent::new`](super::AuditEvent::new), and so by `#[hardened(audit)]`).
///
/// ```
/// use hardened::audit::{AuditContext, AuditEvent, EventType};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let event = hardened::audit::scope(AuditContext::user("ada").session("s-1"), async {
///     AuditEvent::new(EventType::UserMessage)
/// })
/// .await;
/// assert_eq!(event.user_id.as_deref(), Some("ada"));
/// assert_eq!(event.session_id.as_deref(), Some("s-1"));
/// # });
/// ```
///
/// The returned future holds `future` once: an `async fn` here would hold it twice (as its argument, then
/// as what it awaits).
pub fn scope<F: Future>(context: AuditContext, future: F) -> impl Future<Output = F::Output> {
    ACTOR.scope(Arc::new(context), future)
}

/// `future` with `context` as its actor, as a future whose type a tower service can name.
pub fn scoped<F: Future>(
    context: AuditContext,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<AuditContext>, F> {
    ACTOR.scope(Arc::new(context), future)
}

/// Runs `body` with `context` as the actor, for synchronous code.
pub fn sync_scope<R>(context: AuditContext, body: impl FnOnce() -> R) -> R {
    ACTOR.sync_scope(Arc::new(context), body)
}

/// The actor of the current scope, if there is one.
#[must_use]
pub fn current() -> Option<AuditContext> {
    ACTOR.try_with(|actor| AuditContext::clone(actor)).ok()
}

/// The actor of the current scope, shared rather than copied.
pub(crate) fn shared() -> Option<Arc<AuditContext>> {
    ACTOR.try_with(Arc::clone).ok()
}
