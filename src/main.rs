#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    aisales::cli::main()
}
