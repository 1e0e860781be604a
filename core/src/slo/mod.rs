//! Service level objectives as functions declare them: `#[hardened(slo(name = "chat", success = 99.9))]`
//! or `slo = "chat"`.
//!
//! An objective is not a guard: nothing runs in the call for it. Each function that names one places a
//! [`SloMember`] in a distributed slice at link time; `hardened_slo_info{slo,function,module,kind} 1`
//! joins the objective to the call series the function records anyway, and Prometheus rules made by
//! `hardened::slo::rules()` judge those series. The numbers are layered as a guard's are: the
//! configuration's `[slo.<name>]` over the functions' literals.

mod objective;
mod settings;

pub use self::objective::{LatencyObjective, Member, Objective, SloError, SloErrors, resolve};
pub use self::settings::SloSettings;
use crate::guards::site::Site;

/// One function whose calls count towards an objective, as the attribute declares it.
#[doc(hidden)]
#[derive(Debug)]
pub struct SloMember {
    /// The function's call site.
    pub site: &'static Site,
    /// The objective's name.
    pub name: &'static str,
    /// The numbers written in the attribute, if any (`slo = "chat"` writes none).
    pub settings: SloSettings,
}

impl SloMember {
    /// The function's call site.
    #[must_use]
    pub fn site(&self) -> &'static Site {
        self.site
    }
}

// `distributed_slice` places the members in a linker section, which needs `unsafe` link attributes; the
// section holds only `SloMember` values, and linkme checks the element type of every entry.
#[allow(unsafe_code)]
mod section {
    use super::SloMember;

    /// The linker section every function with an `slo` argument adds its [`SloMember`] to.
    #[linkme::distributed_slice]
    pub static SLO_MEMBERS: [SloMember];
}

#[doc(hidden)]
pub use section::SLO_MEMBERS;

/// Every function linked into this program whose calls count towards an objective, in no particular
/// order.
#[must_use]
pub fn members() -> &'static [SloMember] {
    &SLO_MEMBERS
}
