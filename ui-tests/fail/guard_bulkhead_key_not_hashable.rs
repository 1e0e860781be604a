use hardened::hardened;

#[derive(Debug)]
struct Unavailable;

impl From<hardened::Rejected> for Unavailable {
    fn from(_: hardened::Rejected) -> Self {
        Unavailable
    }
}

struct Tenant {
    id: f64,
}

#[hardened(bulkhead(name = "per_tenant", max = 2, key = tenant.id))]
async fn export(tenant: Tenant) -> Result<f64, Unavailable> {
    Ok(tenant.id)
}

fn main() {
    let _ = export(Tenant { id: 1.0 });
}
