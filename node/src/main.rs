fn main() -> std::process::ExitCode {
    corridor_node::cli::main()
}
