use hardened::hardened;

struct Users(Vec<String>);

#[hardened(kind = "db")]
impl Users {
    fn find(&self, id: usize) -> Option<&String> {
        self.0.get(id)
    }

    fn count(&self) -> usize {
        let count: usize = "none";
        count + self.0.len()
    }
}

fn main() {
    let users = Users(Vec::new());
    users.find(0);
    users.count();
}
