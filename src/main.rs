//! `portcullis`: parse the command line, set up logging, run.

use clap::Parser;

// glibc malloc showed up as ~10% of a proxied request's CPU time in profiles;
// mimalloc's thread-local free lists make the many small per-request allocations cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // `portcullis user list | head`: a closed pipe ends the command quietly with the
    // status a SIGPIPE gives (141), as other tools do. (Rust ignores the signal, so
    // printing to a closed pipe panics instead; attack pass.)
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") {
            if msg.contains("Broken pipe") {
                std::process::exit(141);
            }
            // Any other failure to write the output (`> /dev/full`): said in one line.
            eprintln!("error: cannot write the output: {msg}");
            std::process::exit(1);
        }
        default_hook(info)
    }));
    let cli = portcullis::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(portcullis::logs::DEFAULT_FILTER));
    tracing_subscriber::util::SubscriberInitExt::init(portcullis::logs::subscriber(
        filter,
        std::io::stderr,
    ));
    match portcullis::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
