//! The Dockerfile's builder stage, run without Docker: no base image can be pulled here, so
//! the test assembles exactly the build context that stage sees — its `COPY` lines, minus
//! what `.dockerignore` excludes — in a directory that plays the stage's `WORKDIR`, and runs
//! the stage's `RUN` command there. A file the build needs that the stage does not copy (a
//! `[[bench]]` target, a new module directory) makes the build, and the test, fail.
//!
//! Supported Dockerfile subset (asserted): one `FROM … AS builder` stage, `WORKDIR`,
//! `COPY SRC… DEST` from the context, and one exec-form `RUN ["…", …]` whose `/out`
//! argument is the output directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use globset::{GlobBuilder, GlobMatcher};

/// What the builder stage does.
#[derive(Debug)]
pub struct BuilderStage {
    /// `COPY` sources (relative to the context) and destinations (relative to `WORKDIR`).
    pub copies: Vec<(Vec<String>, String)>,
    /// The exec-form `RUN` command.
    pub run: Vec<String>,
}

/// Dockerfile instructions with continuation lines joined and comments dropped.
pub fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            if !current.trim().is_empty() {
                out.push(current.trim().to_owned());
            }
            current.clear();
        }
    }
    out
}

/// Parse the `FROM … AS builder` stage.
pub fn builder_stage(dockerfile: &str) -> BuilderStage {
    let all = instructions(dockerfile);
    let start = all
        .iter()
        .position(|i| i.starts_with("FROM ") && i.ends_with(" AS builder"))
        .expect("a FROM … AS builder stage");
    let mut copies = Vec::new();
    let mut run = None;
    for inst in all[start + 1..]
        .iter()
        .take_while(|i| !i.starts_with("FROM "))
    {
        let (word, rest) = inst.split_once(' ').expect("instruction with arguments");
        match word {
            "COPY" => {
                let mut args: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
                assert!(
                    !args.iter().any(|a| a.starts_with("--")),
                    "builder COPY flags are not modelled: {inst}"
                );
                let dest = args.pop().expect("COPY has a destination");
                copies.push((args, dest));
            }
            "RUN" => {
                assert!(run.is_none(), "one RUN in the builder stage");
                let argv: Vec<String> = serde_json::from_str(rest)
                    .unwrap_or_else(|e| panic!("RUN must be exec form (JSON): {inst}: {e}"));
                run = Some(argv);
            }
            "LABEL" | "WORKDIR" | "ENV" | "ARG" => {}
            other => panic!("builder instruction {other} is not modelled by the test"),
        }
    }
    BuilderStage {
        copies,
        run: run.expect("the builder stage has a RUN"),
    }
}

/// `.dockerignore` as Docker reads it: patterns relative to the context root (a leading `/`
/// ignored), `*` not crossing `/`, `**` any depth, `!` re-including; the last pattern that
/// matches a path or one of its parent directories decides.
pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> DockerIgnore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (pattern, include) = l.strip_prefix('!').map_or((l, false), |p| (p, true));
                let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
                let glob = GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .unwrap_or_else(|e| panic!(".dockerignore pattern {l:?}: {e}"));
                (glob.compile_matcher(), include)
            })
            .collect();
        DockerIgnore { rules }
    }

    /// Whether `rel` (relative to the context root) is excluded from the context.
    pub fn excludes(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for (glob, include) in &self.rules {
            if rel
                .ancestors()
                .any(|a| !a.as_os_str().is_empty() && glob.is_match(a))
            {
                excluded = !include;
            }
        }
        excluded
    }
}

/// Copy `rel` (a file or directory of the context) to `dest`, skipping excluded paths and
/// keeping modification times (so that cargo does not rebuild an unchanged copy).
fn copy_tree(repo: &Path, rel: &Path, dest: &Path, ignore: &DockerIgnore) {
    assert!(
        !ignore.excludes(rel),
        "COPY {} names a path .dockerignore excludes",
        rel.display()
    );
    let src = repo.join(rel);
    let meta = std::fs::metadata(&src)
        .unwrap_or_else(|e| panic!("COPY {}: not in the context: {e}", rel.display()));
    if meta.is_dir() {
        std::fs::create_dir_all(dest).expect("mkdir");
        let mut entries: Vec<_> = std::fs::read_dir(&src)
            .expect("read dir")
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        entries.sort();
        for name in entries {
            let child = rel.join(&name);
            if !ignore.excludes(&child) {
                copy_tree(repo, &child, &dest.join(&name), ignore);
            }
        }
    } else {
        std::fs::create_dir_all(dest.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::copy(&src, dest).expect("copy a context file");
        let modified = meta.modified().expect("mtime");
        std::fs::File::options()
            .write(true)
            .open(dest)
            .and_then(|f| f.set_modified(modified))
            .expect("keep the mtime");
    }
}

/// Lay the builder stage's context out in `workdir` (emptied first).
pub fn assemble(repo: &Path, stage: &BuilderStage, ignore: &DockerIgnore, workdir: &Path) {
    if workdir.exists() {
        std::fs::remove_dir_all(workdir).expect("empty the work dir");
    }
    std::fs::create_dir_all(workdir).expect("mkdir");
    for (sources, dest) in &stage.copies {
        let into_dir = dest.ends_with('/') || sources.len() > 1;
        for src in sources {
            let rel = Path::new(src);
            let is_dir = repo.join(rel).is_dir();
            let target = if into_dir && !is_dir {
                workdir
                    .join(dest)
                    .join(rel.file_name().expect("a file name"))
            } else {
                workdir.join(dest)
            };
            copy_tree(repo, rel, &target, ignore);
        }
    }
}

/// Build the builder stage of `repo`'s Dockerfile from its own context, under cargo's
/// `target_dir` (kept between runs), and return the directory that plays `/out`.
pub fn build(repo: &Path, scratch: &Path, target_dir: &Path) -> PathBuf {
    let dockerfile = std::fs::read_to_string(repo.join("Dockerfile")).expect("Dockerfile");
    let ignore = DockerIgnore::parse(
        &std::fs::read_to_string(repo.join(".dockerignore")).unwrap_or_default(),
    );
    let stage = builder_stage(&dockerfile);
    let workdir = scratch.join("context");
    let out = scratch.join("out");
    assemble(repo, &stage, &ignore, &workdir);
    if out.exists() {
        std::fs::remove_dir_all(&out).expect("empty the output dir");
    }
    let argv: Vec<String> = stage
        .run
        .iter()
        .map(|a| {
            if a == "/out" {
                out.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    assert!(
        argv.iter().any(|a| Path::new(a) == out),
        "the RUN writes to /out"
    );
    let mut cmd = Command::new(&argv[0]);
    crate::support::quick_release::quick_release(&mut cmd);
    let status = cmd
        .args(&argv[1..])
        .current_dir(&workdir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("run the builder stage's RUN");
    assert!(
        status.success(),
        "the builder stage's RUN {argv:?} failed in its own context {}",
        workdir.display()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_docker_rules() {
        let ignore = DockerIgnore::parse("target/\n*.md\n/docs\nsrc/**/*.snap\n!KEEP.md\n");
        let ex = |p: &str| ignore.excludes(Path::new(p));
        assert!(ex("target/release/x") && ex("README.md") && ex("docs/a/b"));
        assert!(ex("src/a/b/c.snap") && !ex("src/a/b/c.rs"));
        assert!(!ex("config/README.md"), "* does not cross /");
        assert!(!ex("KEEP.md"), "! re-includes");
    }
}
