//! The `stagesweep` binary: parse the command line, start tracing, dispatch, exit.

use clap::Parser;
use stagesweep::cli::{Cli, Command, ConfigArg, LogFormat};
use stagesweep::cmd;

fn main() {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let code = match run(cli.command, &cli.config) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stagesweep: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(command: Command, config: &ConfigArg) -> Result<i32, cmd::CmdError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?;
    runtime.block_on(async move {
        match command {
            Command::Prune(args) => cmd::prune::prune(config, &args).await,
            Command::Plan(args) => cmd::prune::plan(config, &args).await,
            Command::Apply(args) => cmd::apply::run(config, &args).await,
            Command::Agent => cmd::agent::run(config).await,
            Command::CheckConfig => cmd::check_config::run(config)
                .await
                .map(|()| stagesweep::exit::OK),
        }
    })
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
