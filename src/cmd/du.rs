//! `stagesweep du`: survey the engine as a dry run would (no per-image calls, the history
//! read only), group the space and print it.

use chrono::Utc;

use super::cli::{ConfigArg, DuArgs, Output};
use super::{CmdError, connect, load_config, stdout};
use crate::pass::survey;
use crate::report::du::{self, DuInput};

/// Run `du`; exit 0 once the report is printed.
pub async fn run(config_arg: &ConfigArg, args: &DuArgs) -> Result<i32, CmdError> {
    let config = load_config(config_arg)?;
    let engine = connect(&config).await?;
    let survey = survey(&engine, &config, Utc::now()).await?;
    let input = DuInput {
        images: &survey.inventory.images,
        plan: &survey.plan,
        records: survey.inventory.build_cache.as_deref().unwrap_or_default(),
        cache: &survey.cache,
        history: &survey.history,
        layers_size: survey.layers_size,
        planned_at: survey.planned_at,
        gone_images: &[],
        gone_records: &[],
    };
    let mut report = du::group(&input, &args.by, args.top);
    report.notes.extend(survey.notes);
    match args.output {
        Output::Text => stdout::print(|out| out.write_all(du::render_text(&report).as_bytes()))?,
        Output::Json => stdout::json(&report)?,
    }
    Ok(crate::exit::OK)
}
