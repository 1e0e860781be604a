//! The resilience guards of `#[hardened]`: `breaker`, `rate` (with `burst`), `concurrency`, `bulkhead`,
//! `timeout`, `retry` and `fallback`, from what the user wrote to the code that runs them, in three
//! stages that depend one way: `args` reads them, `validate` checks them into a [`GuardPlan`], `expand`
//! writes the guard static and the guarded body. The rest of the macro forwards to what is re-exported
//! here.

mod args;
mod expand;
mod per_call;
mod typed_call;
mod validate;

pub(crate) use self::args::{BURST, GUARD_ARGUMENTS, GuardArgs};
pub(crate) use self::expand::{async_call, guards_static, single_pass_call, sync_call};
pub(crate) use self::validate::{GuardPlan, plan};
