//! Patterns and `mut` bindings in arguments, attributes on arguments, other attributes beside
//! `#[hardened]`, and receivers such as `self: Box<Self>`.
use hardened::hardened;

/// Adds the two halves of a pair.
#[must_use]
#[hardened(fields(scale))]
#[inline]
fn sum_pair((a, b): (u32, u32), mut scale: u32, _: &str) -> u32 {
    scale += 1;
    (a + b) * scale
}

#[hardened]
fn first_word(Wrapper(text): Wrapper<'_>) -> &str {
    text.split(' ').next().unwrap_or_default()
}

struct Wrapper<'a>(&'a str);

struct Node(u8);

impl Node {
    #[hardened]
    fn boxed(self: Box<Self>) -> u8 {
        self.0
    }

    #[hardened]
    fn shared(self: std::rc::Rc<Self>) -> u8 {
        self.0
    }

    #[hardened]
    fn with(&self, f: impl FnOnce(u8) -> u8) -> u8 {
        f(self.0)
    }
}

#[hardened]
fn attribute_on_argument(#[allow(unused_variables)] unused: u8) {}

fn main() {
    assert_eq!(sum_pair((1, 2), 1, "x"), 6);
    assert_eq!(first_word(Wrapper("hello world")), "hello");
    assert_eq!(Box::new(Node(3)).boxed(), 3);
    assert_eq!(std::rc::Rc::new(Node(4)).shared(), 4);
    assert_eq!(Node(5).with(|x| x + 1), 6);
    attribute_on_argument(0);
}
