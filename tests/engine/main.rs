//! Tests against a real engine at `DOCKER_HOST` (scripts/test.sh starts each engine of the
//! CI matrix privately and runs this binary against it). Each test makes its own images
//! under a unique label and removes them; without an engine they fail, saying how to start
//! one. Built with `--features host-tests`.

#[path = "../support/mod.rs"]
mod support;

mod engine_builds;
mod engine_cache;
mod engine_cli;
mod engine_context;
mod engine_docker;
mod engine_du;
mod engine_identity;
mod engine_names;
mod engine_prune;
mod engine_tls;
