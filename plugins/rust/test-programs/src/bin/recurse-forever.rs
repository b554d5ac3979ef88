//! Hostile: unbounded recursion, to hit the wasm stack limit.
#[allow(unconditional_recursion)] // The point of the program.
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 32]);
    recurse(std::hint::black_box(n + 1)) + pad[(n % 32) as usize]
}

fn main() {
    println!("{}", recurse(std::hint::black_box(0)));
}
