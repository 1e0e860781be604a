//! `crate = ".."` lets a framework re-export `hardened` and have the derive name it through the
//! re-export.
mod framework {
    pub mod observe {
        pub use ::hardened::*;
    }
}

use framework::observe::Audited;
use framework::observe::audit::{Audited as _, EventType};

#[derive(Audited)]
#[audited(crate = "crate::framework::observe")]
enum Action {
    #[audited(event = "SessionStart")]
    Start {
        #[audited(session_id)]
        session: u64,
    },
}

fn main() {
    let record = Action::Start { session: 3 }.audit_record();
    assert_eq!(record.event_type, EventType::SessionStart);
    assert_eq!(record.session_id.as_deref(), Some("3"));
}
