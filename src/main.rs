#![forbid(unsafe_code)]

// glibc's allocator spent about a fifth of the server's CPU under webhook load (many small,
// short-lived allocations across threads); mimalloc handles that pattern far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aisales::cli::main()
}
