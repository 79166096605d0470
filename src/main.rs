//! `vigil`: parse the command line, load settings, run the verb.

use std::process::ExitCode;

use clap::Parser;
use vigil::cli::{Cli, Command};
use vigil::config::{LogFormat, Settings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vigil: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let serving = matches!(command, Command::Serve | Command::Demo);
    // Operator verbs stay quiet unless VIGIL_LOG asks otherwise; the server logs at `info`.
    let filter = if serving || std::env::var_os("VIGIL_LOG").is_some() {
        settings.log.clone()
    } else {
        "warn".into()
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    match settings.log_format {
        // One object per line, for a collector; never colour codes.
        LogFormat::Json => logs.json().with_ansi(false).init(),
        // Colour only for a person at a terminal: a pipe or a file gets plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let result = actix_web::rt::System::new().block_on(vigil::commands::run(command, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("vigil: error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
