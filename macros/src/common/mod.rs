//! Pieces shared by every macro of the crate.

pub(crate) mod errors;
pub(crate) mod meta;
pub(crate) mod signature;
pub(crate) mod suggest;
pub(crate) mod tokens;
