//! The only surface generated code touches. Not part of the public API: it changes without notice.

pub use linkme;
pub use tracing;

pub use crate::call::Call;
pub use crate::instrument::Instrumented;
pub use crate::outcome::{
    ErrorMessage, ErrorViaDebug, ErrorViaDisplay, ErrorViaName, FieldValue, FieldViaDebug,
    FieldViaDisplay, FieldViaValue, OutcomePredicate, record_failure,
};
pub use crate::site::{SITES, SiteMeta};
