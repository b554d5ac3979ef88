//! Hostile: unbounded recursion, to hit the wasm stack limit.
//!
//! The recursion keeps many values live across the call so that each frame
//! is large on the *wasm* stack, and takes no addresses, so that nothing goes
//! to the shadow stack in linear memory (which would overflow first and trap
//! as an out-of-bounds access instead).

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let (a, b, c, d) = (
        n.wrapping_mul(3),
        n ^ 0x55,
        n.rotate_left(7),
        n.wrapping_add(11),
    );
    let (e, f, g, h) = (
        a ^ b,
        c.wrapping_sub(d),
        a.rotate_right(3),
        b.wrapping_mul(c),
    );
    let r = recurse(n.wrapping_add(1));
    r.wrapping_sub(a ^ b ^ c ^ d).wrapping_sub(e ^ f ^ g ^ h)
}

fn main() {
    println!("{}", recurse(std::env::args().count() as u64));
}
