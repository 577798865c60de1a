//! A synthetic, realistic inventory for planning benchmarks: tagged base images, classic
//! multi-stage builds (a chain of 3–5 untagged `stage=builder` images on a base, then an
//! untagged intermediate and a tagged final image per build), labels per project and tier,
//! a few containers. Deterministic for a given size.

use chrono::{DateTime, Duration, Utc};
use stagesweep::inventory::{Container, Image, ImageId, Inventory};

/// The ten policies the benchmarks plan with.
pub const POLICIES_YAML: &str = include_str!("policies.yaml");

const BASES: usize = 16;
const PROJECTS: usize = 10;
const MB: u64 = 1_000_000;

/// splitmix64: enough randomness for IDs and sizes, reproducible without a crate.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A small count as seconds (bench sizes never come near `i64::MAX`).
fn secs(n: usize) -> i64 {
    i64::try_from(n).expect("bench sizes fit in i64")
}

fn image_id(i: usize) -> ImageId {
    let i = i as u64;
    let mut bytes = [0u8; 32];
    for (chunk, salt) in bytes.chunks_exact_mut(8).zip([0, 0xa5a5, 0x5a5a, 0xffff]) {
        chunk.copy_from_slice(&mix(i ^ salt).to_be_bytes());
    }
    ImageId::from_bytes(bytes)
}

struct Builder {
    images: Vec<Image>,
}

impl Builder {
    fn push(
        &mut self,
        parent: Option<usize>,
        references: Vec<String>,
        labels: &[(&str, &str)],
        created: DateTime<Utc>,
    ) -> usize {
        let i = self.images.len();
        let own = (mix(i as u64 ^ 0x51ce) % (50 * MB)) + MB;
        let size = parent.map_or(80 * MB, |p| self.images[p].size) + own;
        self.images.push(Image {
            id: image_id(i),
            parent_id: parent.map(|p| self.images[p].id),
            references,
            digests: Vec::new(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            created,
            last_tagged: None,
            size,
            shared_size: None,
        });
        i
    }
}

/// `n` images (exactly) and a few containers, the newest build an hour before `now`.
pub fn inventory(n: usize, now: DateTime<Utc>) -> Inventory {
    let mut b = Builder {
        images: Vec::with_capacity(n + 8),
    };
    let oldest = now - Duration::days(30);
    for k in 0..BASES {
        let tag = if k == 0 {
            "docker.io/library/base0:latest".to_owned()
        } else {
            format!("docker.io/library/base{k}:1.{k}")
        };
        b.push(None, vec![tag], &[], oldest - Duration::days(30));
    }
    // A build adds six images on average; the last few may be younger than min_age.
    let builds = (n / 6).max(1);
    let step = Duration::days(30).num_seconds() / secs(builds);
    let mut finals = Vec::new();
    let mut builder_leaves = Vec::new();
    for build in 0.. {
        if b.images.len() >= n {
            break;
        }
        let project = format!("proj{}", build % PROJECTS);
        let tier = if build % 3 == 0 { "dev" } else { "prod" };
        let created = oldest + Duration::seconds(step * secs(build)) - Duration::hours(1);
        let base = Some(build % BASES);
        let stage = [
            ("stage", "builder"),
            ("com.example.project", project.as_str()),
        ];
        let mut parent = base;
        for s in 0..3 + build % 3 {
            let at = created + Duration::seconds(secs(s));
            parent = Some(b.push(parent, Vec::new(), &stage, at));
        }
        builder_leaves.extend(parent);
        let mut app: Vec<(&str, &str)> = vec![("com.example.project", &project), ("tier", tier)];
        if build % 97 == 0 {
            app.push(("stagesweep.keep", "true"));
        }
        let mid = b.push(base, Vec::new(), &app, created + Duration::seconds(10));
        let mut tags = vec![format!("registry.example.com/app-{project}:b{build}")];
        if build % 50 == 0 {
            tags.push(format!("registry.example.com/app-{project}:latest"));
        }
        finals.push(b.push(Some(mid), tags, &app, created + Duration::seconds(11)));
    }
    b.images.truncate(n);
    let containers = containers(&b.images, &finals, &builder_leaves);
    Inventory {
        images: b.images,
        containers,
        build_cache: None,
    }
}

/// Containers on the newest final images (by tag, a quarter of them stopped) and on one
/// builder stage (a classic `RUN` step's container left behind, by bare ID and stopped: no
/// build is in flight, so an agent's pass is not deferred).
fn containers(images: &[Image], finals: &[usize], builder_leaves: &[usize]) -> Vec<Container> {
    let mut used: Vec<usize> = finals.iter().rev().take(20).copied().collect();
    used.extend(builder_leaves.get(builder_leaves.len() / 2));
    used.retain(|&i| i < images.len());
    used.iter()
        .enumerate()
        .map(|(k, &i)| {
            let tag = images[i].references.first();
            Container {
                id: format!("{:016x}{:016x}", mix(k as u64 ^ 0xc0), mix(k as u64 ^ 0xc1)),
                image_id: images[i].id,
                image: tag.cloned().unwrap_or_else(|| images[i].id.to_string()),
                state: if k % 4 == 0 || tag.is_none() {
                    "exited"
                } else {
                    "running"
                }
                .to_owned(),
            }
        })
        .collect()
}
