//! `GET /guards`: every guard and its state.

use axum::Json;
use axum::response::{IntoResponse, Response};

use crate::guard_states::{self, GuardStates};

pub(super) async fn guards() -> Response {
    let states: GuardStates = guard_states::snapshot();
    (super::access::no_store(), Json(states)).into_response()
}
