use hardened::Audited;

#[derive(Audited)]
struct Created<T> {
    item: T,
}

struct Secret;

fn emit(action: &impl hardened::audit::Audited) {
    let _ = action.audit_record();
}

fn main() {
    emit(&Created { item: Secret });
}
