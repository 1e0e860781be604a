use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

#[derive(Debug)]
struct Tenant {
    id: u64,
}

#[hardened(rate(name = "per_tenant", per_second = 5, key = tenant))]
fn lookup(tenant: Tenant) -> Result<u64, Unavailable> {
    Ok(tenant.id)
}

fn main() {
    let _ = lookup(Tenant { id: 1 });
}
