//! Generic types get the bounds of the fields they serialize, and only those.
use std::fmt::Display;

use hardened::Audited;
use hardened::audit::{Audited as _, REDACTED};

#[derive(Audited)]
enum Change<'a, T, U: Display, S = ()>
where
    T: Clone,
{
    Set { key: &'a str, value: T },
    By(#[audited(user_id)] U, #[audited(redact)] S, #[audited(skip)] S),
}

#[derive(Audited)]
struct Batch<T, const N: usize> {
    items: Vec<T>,
}

/// Neither `Serialize` nor `Display`.
struct Opaque;

fn main() {
    let set: Change<'_, Vec<u8>, u8> = Change::Set { key: "k", value: vec![1] };
    assert_eq!(set.audit_record().details["value"][0], 1);

    let by: Change<'_, u8, &str, Opaque> = Change::By("ada", Opaque, Opaque);
    let record = by.audit_record();
    assert_eq!(record.user_id.as_deref(), Some("ada"));
    assert_eq!(record.details["1"], REDACTED);

    let batch: Batch<u8, 3> = Batch { items: vec![1, 2, 3] };
    assert_eq!(batch.audit_record().details["items"][2], 3);
}
