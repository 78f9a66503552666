//! The `ferroswitch` binary. The daemon itself is not wired yet (see README).

fn main() {
    eprintln!(
        "ferroswitch {}: daemon not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(1);
}
