//! Small helpers every layer uses, kept below all of them so that none has to reach into another for one.

mod boxed;
mod hex;
mod json_text;
pub(crate) mod key_hash;
mod overlay;
mod service;

pub use self::boxed::BoxFuture;
pub use self::hex::{hex, push_hex};
pub use self::json_text::needs_json_escaping;
pub use self::overlay::overlay;
pub use self::service::{service_name, set_service_name};
