//! An annotated `impl` block: every method is wrapped with the block's arguments, `skip` opts one out
//! and a method's own attribute refines the block's arguments.
use hardened::hardened;

#[derive(Default)]
struct Conversation {
    messages: Vec<String>,
}

#[hardened(kind = "reducer", level = "debug")]
impl Conversation {
    fn push(&mut self, message: &str) -> usize {
        self.messages.push(message.to_owned());
        self.messages.len()
    }

    #[hardened(skip)]
    fn last(&self) -> Option<&str> {
        self.messages.last().map(String::as_str)
    }

    #[hardened(name = "conversation.summary", kind = "llm", fields(limit))]
    fn summary(&self, limit: usize) -> String {
        self.messages.iter().take(limit).cloned().collect::<Vec<_>>().join(" ")
    }
}

fn main() {
    let mut conversation = Conversation::default();
    assert_eq!(conversation.push("hello"), 1);
    assert_eq!(conversation.push("world"), 2);
    assert_eq!(conversation.last(), Some("world"));
    assert_eq!(conversation.summary(1), "hello");

    let sites = hardened::sites();
    let push = sites.iter().find(|site| site.function() == "push").expect("`push` is registered");
    assert_eq!(push.kind(), "reducer");
    let summary = sites
        .iter()
        .find(|site| site.name() == "conversation.summary")
        .expect("`summary` is registered under its own name");
    assert_eq!(summary.kind(), "llm");
    assert!(!sites.iter().any(|site| site.function() == "last"));
}
