//! The `stagesweep` binary: parse the command line, start tracing, dispatch, exit.

use clap::Parser;
use stagesweep::cmd;
use stagesweep::cmd::cli::{Cli, Command, ConfigArg};
use stagesweep::cmd::logging;

fn main() {
    let cli = Cli::parse();
    logging::init(cli.log_format, cli.quiet, cli.verbose);
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
    match command {
        Command::Completions(args) => {
            return cmd::shell::completions(args.shell).map(|()| stagesweep::exit::OK);
        }
        Command::Manpage(args) => {
            return cmd::shell::manpage(args.section).map(|()| stagesweep::exit::OK);
        }
        _ => {}
    }
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
            Command::Hold(args) => cmd::hold::run(config, &args).await,
            Command::Du(args) => cmd::du::run(config, &args).await,
            Command::Healthcheck(args) => cmd::healthcheck::run(config, &args).await,
            Command::CheckConfig => cmd::check_config::run(config)
                .await
                .map(|()| stagesweep::exit::OK),
            Command::Completions(_) | Command::Manpage(_) => {
                unreachable!("handled above, without a runtime")
            }
        }
    })
}
