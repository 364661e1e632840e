fn main() {
    println!("glasshouse {}", env!("CARGO_PKG_VERSION"));
}
