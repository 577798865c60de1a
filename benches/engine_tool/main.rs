//! Helper binary for the benchmark scripts in `bench/` (not a timed test):
//!
//! - `load`: load N fixture images (each with its own random layer) in big batches;
//! - `count`: count images carrying a label (intermediate ones included);
//! - `delete`: the engine's own limit: bare `DELETE /images/{id}` calls over a pool of
//!   persistent connections, C in flight, timed; prints one JSON line;
//! - `serve`: a fake Engine API on a unix socket holding N synthetic images, for
//!   `stagesweep plan` at scale and the agent's memory with a history (`--history FILE`).
//!
//! Without a subcommand (as under `cargo test --all-targets`) it prints its usage and exits 0.

mod fake_api;
#[allow(dead_code)] // the loader uses a subset of the test fixture builder
#[path = "../../tests/support/fixture.rs"]
mod fixture;
#[allow(dead_code)] // the planner bench uses the policies; this tool only the inventory
#[path = "../support/synth.rs"]
mod synth;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bollard::Docker;
use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
use chrono::Utc;
use clap::{Parser, Subcommand};
use futures_util::{StreamExt, stream};

#[derive(Debug, Parser)]
#[command(
    name = "engine_tool",
    about = "helper for bench/*.sh (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load COUNT untagged images with the given labels, each with its own layer
    Load {
        #[arg(long)]
        count: usize,
        /// key=value (repeatable)
        #[arg(long = "label", required = true)]
        labels: Vec<String>,
        /// Images per `POST /images/load` call
        #[arg(long, default_value_t = 250)]
        batch: usize,
        /// Load calls in flight at once
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Bytes of random content in each image's layer
        #[arg(long, default_value_t = 1024)]
        layer_bytes: usize,
        /// Age of the images (`Created`), in hours
        #[arg(long, default_value_t = 48)]
        age_hours: i64,
    },
    /// Print how many images (intermediate ones included) carry the label key=value
    Count {
        #[arg(long)]
        label: String,
    },
    /// Delete every image with the label key=value, CONCURRENCY calls in flight; print JSON
    Delete {
        #[arg(long)]
        label: String,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// Serve a fake Engine API with `IMAGES` synthetic images on `SOCKET` for at most `MAX_SECS`
    Serve {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        images: usize,
        #[arg(long, default_value_t = 900)]
        max_secs: u64,
        /// Also write a history file with one record per served image (for the agent)
        #[arg(long)]
        history: Option<PathBuf>,
        /// Write it in the previous layout (version 1, columnar JSON), which builds from before
        /// version 2 read too (to compare them with `bench/history.sh --bin`)
        #[arg(long)]
        history_v1: bool,
        /// A DELETE by ID removes the image from the listing and inspect (else the listing
        /// never changes: every prune against it deletes the same set)
        #[arg(long)]
        deleting: bool,
    },
}

fn main() -> Result<()> {
    // `cargo test --all-targets` runs bench targets with harness arguments such as `--bench`
    // absent; anything that is not a subcommand here means "nothing to do".
    let args: Vec<String> = std::env::args().collect();
    let known = ["load", "count", "delete", "serve", "help", "--help", "-h"];
    if args.get(1).is_none_or(|a| !known.contains(&a.as_str())) {
        println!(
            "engine_tool: no subcommand; nothing to do (used by bench/*.sh, see BENCHMARKS.md)"
        );
        return Ok(());
    }
    let cli = Cli::parse_from(args);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match cli.command {
        None => Ok(()),
        Some(Command::Serve {
            socket,
            images,
            max_secs,
            history,
            history_v1,
            deleting,
        }) => {
            let inventory = synth::inventory(images, Utc::now());
            if let Some(path) = history {
                fake_api::write_history(&path, &inventory, history_v1)?;
            }
            rt.block_on(fake_api::serve(
                &socket,
                &inventory,
                Duration::from_secs(max_secs),
                deleting,
            ))
        }
        Some(cmd) => rt.block_on(engine_command(cmd)),
    }
}

async fn engine_command(cmd: Command) -> Result<()> {
    let docker = Docker::connect_with_defaults()
        .context("connecting to DOCKER_HOST")?
        .negotiate_version()
        .await
        .context("negotiating the api version")?;
    match cmd {
        Command::Load {
            count,
            labels,
            batch,
            jobs,
            layer_bytes,
            age_hours,
        } => load(&docker, count, &labels, batch, jobs, layer_bytes, age_hours).await,
        Command::Count { label } => {
            println!("{}", list_ids(&docker, &label).await?.len());
            Ok(())
        }
        Command::Delete { label, concurrency } => delete(&docker, &label, concurrency).await,
        Command::Serve { .. } => unreachable!("serve runs without a docker client"),
    }
}

fn split_label(label: &str) -> Result<(String, String)> {
    let (k, v) = label
        .split_once('=')
        .with_context(|| format!("label {label:?} is not key=value"))?;
    Ok((k.to_owned(), v.to_owned()))
}

async fn load(
    docker: &Docker,
    count: usize,
    labels: &[String],
    batch: usize,
    jobs: usize,
    layer_bytes: usize,
    age_hours: i64,
) -> Result<()> {
    let labels: Vec<(String, String)> = labels
        .iter()
        .map(|l| split_label(l))
        .collect::<Result<_>>()?;
    let created = Utc::now() - chrono::Duration::hours(age_hours);
    let image = || {
        let mut im = fixture::FixtureImage::new(&labels[0], created).layer_bytes(layer_bytes);
        for (k, v) in &labels[1..] {
            im = im.label(k, v);
        }
        im
    };
    let batches: Vec<Vec<fixture::FixtureImage>> = (0..count)
        .collect::<Vec<_>>()
        .chunks(batch.max(1))
        .map(|c| c.iter().map(|_| image()).collect())
        .collect();
    let started = Instant::now();
    let loaded: usize = stream::iter(batches)
        .map(|b| async move { fixture::load(docker, &b).await.len() })
        .buffer_unordered(jobs.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    eprintln!(
        "engine_tool: loaded {loaded} images in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn list_ids(docker: &Docker, label: &str) -> Result<Vec<String>> {
    let filters = HashMap::from([("label", vec![label])]);
    let opts = ListImagesOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let images = docker
        .list_images(Some(opts))
        .await
        .context("listing images")?;
    Ok(images.into_iter().map(|i| i.id).collect())
}

async fn delete(docker: &Docker, label: &str, concurrency: usize) -> Result<()> {
    let ids = list_ids(docker, label).await?;
    let started = Instant::now();
    let errors: Vec<String> = stream::iter(&ids)
        .map(|id| async move {
            let opts = RemoveImageOptionsBuilder::new()
                .force(false)
                .noprune(false)
                .build();
            docker
                .remove_image(id, Some(opts), None)
                .await
                .map_err(|e| format!("{id}: {e}"))
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    if let Some(first) = errors.first() {
        bail!(
            "{} of {} deletions failed, first: {first}",
            errors.len(),
            ids.len()
        );
    }
    println!(
        "{}",
        serde_json::json!({ "images": ids.len(), "concurrency": concurrency, "secs": secs })
    );
    Ok(())
}
