//! Methods of a trait implementation, annotated one by one and through the `impl` block, and a
//! trait's default method.
use hardened::hardened;

trait Shape {
    fn area(&self) -> f64;
    fn scale(&mut self, factor: f64);

    #[hardened]
    fn doubled(&self) -> f64 {
        self.area() * 2.0
    }
}

struct Square(f64);
struct Circle(f64);

impl Shape for Square {
    #[hardened(kind = "geometry")]
    fn area(&self) -> f64 {
        self.0 * self.0
    }

    #[hardened]
    fn scale(&mut self, factor: f64) {
        self.0 *= factor;
    }
}

#[hardened(kind = "geometry")]
impl Shape for Circle {
    fn area(&self) -> f64 {
        3.0 * self.0 * self.0
    }

    fn scale(&mut self, factor: f64) {
        self.0 *= factor;
    }
}

fn total(shapes: &[&dyn Shape]) -> f64 {
    shapes.iter().map(|shape| shape.area()).sum()
}

fn main() {
    let mut square = Square(2.0);
    square.scale(1.5);
    let mut circle = Circle(1.0);
    circle.scale(2.0);
    assert!((square.area() - 9.0).abs() < f64::EPSILON);
    assert!((circle.area() - 12.0).abs() < f64::EPSILON);
    assert!((total(&[&square, &circle]) - 21.0).abs() < f64::EPSILON);
    assert!((square.doubled() - 18.0).abs() < f64::EPSILON);
}
