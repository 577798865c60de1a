//! The house rules of `src/`, checked on the source itself (syn parses every file):
//!
//! - no import cycle between files, nor between top-level modules;
//! - no upward import: each top-level module imports only from the floors below it
//!   ([`FLOORS`]) or from its own floor's modules without a cycle;
//! - no production file over [`MAX_LINES`] lines (tests excluded);
//! - one module-file style (`mod.rs`) and one test-file convention (`#[cfg(test)] mod tests`
//!   at the end of the file, or a `<file>_tests.rs` beside it when long).
//!
//! An import is a path that names something of the crate: a `use` item or a path in code
//! (`crate::…`, `super::…`, `self::…`, a child module, or a name a `use` bound to a module),
//! macro arguments included. It is resolved to the file that defines the item, through
//! re-exports (`pub use`), so a folder's `mod.rs` that only re-exports is no hub. Code under
//! `#[cfg(test)]` (and behind the `test-util` feature) is not production code and is left out.
//!
//! Why not `cargo modules dependencies --acyclic`: see CONTRIBUTING.md ("The house rules").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The top-level modules by floor, lowest first. A module may import from any lower floor
/// and from its own floor (without a cycle); never from a higher one.
const FLOORS: &[&[&str]] = &[
    &["units", "reference", "exit", "progress"],
    &["inventory"],
    &["config"],
    &["engine", "locks"],
    &["history", "builds"],
    &["plan"],
    &["execute"],
    &["plan_file"],
    &["pass"],
    &["report"],
    &["agent"],
    &["cmd"],
];

/// Longest production file, in lines (tests excluded).
const MAX_LINES: usize = 400;

#[derive(Debug, Default)]
struct Module {
    /// `crate`, then the module names.
    path: Vec<String>,
    file: PathBuf,
    /// Declared in this file's body (`mod x { … }`) rather than a file of its own.
    inline: bool,
    children: BTreeMap<String, usize>,
    parent: Option<usize>,
    /// `pub use` items: the name they bind (or `*`) and the absolute path they point at.
    reexports: Vec<(String, Vec<String>)>,
    /// Names bound by `use` items: name → absolute path.
    aliases: BTreeMap<String, Vec<String>>,
    /// Every crate path this module's code names, made absolute.
    uses: Vec<Vec<String>>,
    /// The names of the items this module defines.
    defines: BTreeSet<String>,
}

struct Crate {
    modules: Vec<Module>,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_test_cfg(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let text = a.meta.to_token_stream_string();
            text.contains("test")
        }
    })
}

trait TokensText {
    fn to_token_stream_string(&self) -> String;
}

impl TokensText for syn::Meta {
    fn to_token_stream_string(&self) -> String {
        quote::ToTokens::to_token_stream(self).to_string()
    }
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

impl Crate {
    fn load(root: &Path) -> Crate {
        let mut c = Crate {
            modules: Vec::new(),
        };
        c.modules.push(Module {
            path: vec!["crate".into()],
            file: root.join("lib.rs"),
            ..Module::default()
        });
        c.load_file(0);
        c
    }

    fn load_file(&mut self, m: usize) {
        let file = self.modules[m].file.clone();
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        self.load_items(m, &parsed.items);
    }

    /// The directory that holds the files of `m`'s child modules.
    fn child_dir(&self, m: usize) -> PathBuf {
        let module = &self.modules[m];
        let dir = module
            .file
            .parent()
            .expect("a file has a directory")
            .to_owned();
        let name = module
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if module.inline {
            let mut dir = self.child_dir(module.parent.expect("inline modules have a parent"));
            dir.push(module.path.last().expect("a module has a name"));
            return dir;
        }
        if matches!(name, "mod.rs" | "lib.rs" | "main.rs") {
            dir
        } else {
            dir.join(name.trim_end_matches(".rs"))
        }
    }

    fn load_items(&mut self, m: usize, items: &[syn::Item]) {
        // First the modules and `use` items (the names code paths may start with), then
        // the paths in the rest of the code.
        for item in items {
            if let syn::Item::Mod(md) = item
                && !is_test_cfg(&md.attrs)
            {
                self.load_mod(m, md);
            }
        }
        for item in items {
            match item {
                syn::Item::Use(u) if !is_test_cfg(&u.attrs) => self.load_use(m, u),
                other => {
                    if let Some(name) = defined_name(other) {
                        self.modules[m].defines.insert(name);
                    }
                }
            }
        }
        for item in items {
            if matches!(item, syn::Item::Mod(_) | syn::Item::Use(_)) || item_is_test(item) {
                continue;
            }
            let mut v = PathVisitor { found: Vec::new() };
            v.visit_item(item);
            for p in v.found {
                if let Some(abs) = self.absolute(m, &p) {
                    self.modules[m].uses.push(abs);
                }
            }
        }
    }

    fn load_mod(&mut self, m: usize, md: &syn::ItemMod) {
        let name = md.ident.to_string();
        let mut path = self.modules[m].path.clone();
        path.push(name.clone());
        let child = self.modules.len();
        let (file, inline) = if md.content.is_some() {
            (self.modules[m].file.clone(), true)
        } else {
            let file = if let Some(p) = path_attr(&md.attrs) {
                self.modules[m]
                    .file
                    .parent()
                    .expect("a file has a directory")
                    .join(p)
            } else {
                let dir = self.child_dir(m);
                let flat = dir.join(format!("{name}.rs"));
                if flat.exists() {
                    flat
                } else {
                    dir.join(&name).join("mod.rs")
                }
            };
            (file, false)
        };
        self.modules.push(Module {
            path,
            file,
            inline,
            parent: Some(m),
            ..Module::default()
        });
        self.modules[m].children.insert(name, child);
        match &md.content {
            Some((_, items)) => self.load_items(child, items),
            None => self.load_file(child),
        }
    }

    fn load_use(&mut self, m: usize, u: &syn::ItemUse) {
        let public = !matches!(u.vis, syn::Visibility::Inherited);
        let mut found = Vec::new();
        flatten_use(&u.tree, Vec::new(), &mut found);
        for (segments, bound) in found {
            if let Some(abs) = self.absolute(m, &segments) {
                if public {
                    self.modules[m].reexports.push((bound.clone(), abs.clone()));
                }
                if bound != "*" && bound != "_" {
                    self.modules[m].aliases.insert(bound, abs.clone());
                }
                self.modules[m].uses.push(abs);
            }
        }
    }

    /// `segments` as written in module `m`, made absolute (starting with `crate`); `None`
    /// for paths outside the crate (std, other crates) and bare local names.
    fn absolute(&self, m: usize, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = m;
        let mut rest = segments;
        match first.as_str() {
            "crate" => return Some(segments.to_vec()),
            "self" => rest = &segments[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    base = self.modules[base].parent?;
                    rest = &rest[1..];
                }
            }
            name => {
                if self.modules[m].children.contains_key(name) {
                    // a child module, named relative to this one
                } else if let Some(abs) = self.modules[m].aliases.get(name) {
                    let mut out = abs.clone();
                    out.extend_from_slice(&segments[1..]);
                    return Some(out);
                } else {
                    return None;
                }
            }
        }
        let mut out = self.modules[base].path.clone();
        out.extend_from_slice(rest);
        Some(out)
    }

    /// The module whose file defines what `abs` names (through re-exports).
    fn resolve(&self, abs: &[String], depth: usize) -> Option<usize> {
        if depth > 32 {
            return None;
        }
        let mut m = 0;
        for (i, seg) in abs.iter().enumerate().skip(1) {
            if let Some(&c) = self.modules[m].children.get(seg) {
                m = c;
                continue;
            }
            for (name, target) in &self.modules[m].reexports {
                if name == seg {
                    let mut next = target.clone();
                    next.extend_from_slice(&abs[i + 1..]);
                    return self.resolve(&next, depth + 1);
                }
            }
            for (name, target) in &self.modules[m].reexports {
                if name == "*" {
                    let mut next = target.clone();
                    next.extend_from_slice(&abs[i..]);
                    if let Some(found) = self.resolve_defined(&next, depth + 1) {
                        return Some(found);
                    }
                }
            }
            return Some(m);
        }
        Some(m)
    }

    /// Like [`Crate::resolve`], but only when the module reached defines, re-exports or
    /// holds the name (for glob re-exports, where the name may live elsewhere).
    fn resolve_defined(&self, abs: &[String], depth: usize) -> Option<usize> {
        let name = abs.last()?;
        let found = self.resolve(abs, depth)?;
        let module = &self.modules[found];
        let known = module.defines.contains(name)
            || module.reexports.iter().any(|(n, _)| n == name)
            || module.path.last() == Some(name);
        known.then_some(found)
    }

    /// The file module (not an inline one) that holds module `m`.
    fn file_of(&self, mut m: usize) -> usize {
        while self.modules[m].inline {
            m = self.modules[m]
                .parent
                .expect("inline modules have a parent");
        }
        m
    }

    /// File-level edges: importer file → defining file.
    fn edges(&self) -> BTreeSet<(usize, usize)> {
        let mut edges = BTreeSet::new();
        for (m, module) in self.modules.iter().enumerate() {
            let from = self.file_of(m);
            for u in &module.uses {
                if let Some(to) = self.resolve(u, 0).map(|t| self.file_of(t))
                    && to != from
                {
                    edges.insert((from, to));
                }
            }
        }
        edges
    }

    fn name(&self, m: usize) -> String {
        let p = &self.modules[m].file;
        p.strip_prefix(src()).unwrap_or(p).display().to_string()
    }

    fn top(&self, m: usize) -> Option<&str> {
        self.modules[m].path.get(1).map(String::as_str)
    }
}

/// The name an item defines, if it defines one.
fn defined_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Fn(x) => &x.sig.ident,
        syn::Item::Struct(x) => &x.ident,
        syn::Item::Enum(x) => &x.ident,
        syn::Item::Const(x) => &x.ident,
        syn::Item::Static(x) => &x.ident,
        syn::Item::Trait(x) => &x.ident,
        syn::Item::Type(x) => &x.ident,
        syn::Item::Union(x) => &x.ident,
        syn::Item::Macro(x) => x.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

fn item_is_test(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Fn(x) => &x.attrs,
        syn::Item::Impl(x) => &x.attrs,
        syn::Item::Struct(x) => &x.attrs,
        syn::Item::Enum(x) => &x.attrs,
        syn::Item::Const(x) => &x.attrs,
        syn::Item::Static(x) => &x.attrs,
        syn::Item::Trait(x) => &x.attrs,
        syn::Item::Type(x) => &x.attrs,
        syn::Item::Macro(x) => &x.attrs,
        _ => return false,
    };
    is_test_cfg(attrs)
}

/// Every path of a `use` tree, with the name it binds (`*` for a glob).
fn flatten_use(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut prefix = prefix;
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                let bound = prefix.last().cloned().unwrap_or_default();
                out.push((prefix, bound));
            } else {
                let mut path = prefix;
                path.push(name.clone());
                out.push((path, name));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix;
            let name = r.ident.to_string();
            if name != "self" {
                path.push(name);
            }
            out.push((path, r.rename.to_string()));
        }
        syn::UseTree::Glob(_) => out.push((prefix, "*".into())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix.clone(), out);
            }
        }
    }
}

/// Collects the multi-segment paths in code (and in macro arguments), skipping code under
/// `#[cfg(test)]`.
struct PathVisitor {
    found: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for PathVisitor {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() && p.segments.len() > 1 {
            self.found
                .push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !is_test_cfg(&m.attrs) {
            syn::visit::visit_item_mod(self, m);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_cfg(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        scan_tokens(mac.tokens.clone(), &mut self.found);
        syn::visit::visit_macro(self, mac);
    }
}

/// `a::b::c` sequences in a macro's tokens.
fn scan_tokens(tokens: proc_macro2::TokenStream, out: &mut Vec<Vec<String>>) {
    use proc_macro2::TokenTree;
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        match &trees[i] {
            TokenTree::Group(g) => scan_tokens(g.stream(), out),
            TokenTree::Ident(first) => {
                let mut path = vec![first.to_string()];
                let mut j = i + 1;
                while j + 2 < trees.len() + 1 {
                    let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)), Some(next)) =
                        (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    else {
                        break;
                    };
                    if a.as_char() != ':' || b.as_char() != ':' {
                        break;
                    }
                    match next {
                        TokenTree::Ident(id) => path.push(id.to_string()),
                        _ => break,
                    }
                    j += 3;
                }
                if path.len() > 1 {
                    out.push(path);
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The strongly connected components with more than one node (each holds a cycle).
fn cycles<N: Ord + Copy>(nodes: &BTreeSet<N>, edges: &BTreeSet<(N, N)>) -> Vec<Vec<N>> {
    struct Tarjan<'a, N> {
        next_of: &'a BTreeMap<N, Vec<N>>,
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        on_stack: BTreeSet<N>,
        stack: Vec<N>,
        out: Vec<Vec<N>>,
    }
    impl<N: Ord + Copy> Tarjan<'_, N> {
        fn visit(&mut self, n: N) {
            let i = self.index.len();
            self.index.insert(n, i);
            self.low.insert(n, i);
            self.stack.push(n);
            self.on_stack.insert(n);
            for &to in self.next_of.get(&n).map_or(&[][..], Vec::as_slice) {
                if !self.index.contains_key(&to) {
                    self.visit(to);
                    let l = self.low[&n].min(self.low[&to]);
                    self.low.insert(n, l);
                } else if self.on_stack.contains(&to) {
                    let l = self.low[&n].min(self.index[&to]);
                    self.low.insert(n, l);
                }
            }
            if self.low[&n] == self.index[&n] {
                let mut scc = Vec::new();
                while let Some(x) = self.stack.pop() {
                    self.on_stack.remove(&x);
                    scc.push(x);
                    if x == n {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.reverse();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut next_of: BTreeMap<N, Vec<N>> = BTreeMap::new();
    for &(from, to) in edges {
        next_of.entry(from).or_default().push(to);
    }
    let mut t = Tarjan {
        next_of: &next_of,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for &n in nodes.iter().chain(next_of.keys()) {
        if !t.index.contains_key(&n) {
            t.visit(n);
        }
    }
    t.out
}

/// The edges inside one strongly connected component, for the message.
fn describe_cycle(c: &Crate, scc: &[usize], edges: &BTreeSet<(usize, usize)>) -> String {
    let members: BTreeSet<usize> = scc.iter().copied().collect();
    let inner: Vec<String> = edges
        .iter()
        .filter(|(f, t)| members.contains(f) && members.contains(t))
        .map(|&(f, t)| format!("{} -> {}", c.name(f), c.name(t)))
        .collect();
    inner.join(", ")
}

#[test]
fn no_file_imports_in_a_circle() {
    let c = Crate::load(&src());
    let edges = c.edges();
    let nodes: BTreeSet<usize> = (0..c.modules.len()).map(|m| c.file_of(m)).collect();
    let found: Vec<String> = cycles(&nodes, &edges)
        .iter()
        .map(|scc| describe_cycle(&c, scc, &edges))
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between files (move the shared type down into a file both can import):\n{}",
        found.join("\n")
    );
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

#[test]
fn no_module_imports_upwards_or_in_a_circle() {
    let c = Crate::load(&src());
    let mut top_edges: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut upward = Vec::new();
    let mut unknown = BTreeSet::new();
    for (from, to) in c.edges() {
        let (Some(a), Some(b)) = (c.top(from), c.top(to)) else {
            continue;
        };
        if a == b {
            continue;
        }
        top_edges.insert((a, b));
        match (floor_of(a), floor_of(b)) {
            (Some(fa), Some(fb)) if fb > fa => {
                upward.push(format!(
                    "{} -> {} ({a} imports {b}, a higher floor)",
                    c.name(from),
                    c.name(to)
                ));
            }
            (None, _) => {
                unknown.insert(a);
            }
            (_, None) => {
                unknown.insert(b);
            }
            _ => {}
        }
    }
    let tops: BTreeSet<&str> = c
        .modules
        .iter()
        .filter_map(|m| m.path.get(1).map(String::as_str))
        .collect();
    for t in &tops {
        if floor_of(t).is_none() {
            unknown.insert(t);
        }
    }
    assert!(
        unknown.is_empty(),
        "top-level modules on no floor (add them to FLOORS in {}): {unknown:?}",
        file!()
    );
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
    let found = cycles(&tops, &top_edges);
    assert!(
        found.is_empty(),
        "import cycles between top-level modules: {found:?}"
    );
}

/// Lines of production code in a file: up to its `#[cfg(test)]` module, if any.
fn production_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| l.trim() == "#[cfg(test)]")
        .unwrap_or(lines.len())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_production_file_is_over_the_limit() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("readable source file");
        let n = production_lines(&text);
        if n > MAX_LINES {
            long.push(format!("{}: {n} lines", f.display()));
        }
    }
    assert!(
        long.is_empty(),
        "production files over {MAX_LINES} lines (split them along their seams):\n{}",
        long.join("\n")
    );
}

#[test]
fn one_module_file_style_and_one_test_file_convention() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut odd = Vec::new();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name.trim_end_matches(".rs");
        // `foo.rs` beside a `foo/` folder is the other module-file style.
        if f.with_extension("").is_dir() && name != "mod.rs" {
            odd.push(format!("{}: use {stem}/mod.rs", f.display()));
        }
        // Test files are `<file>_tests.rs` beside the file they test.
        if name == "tests.rs" || name.starts_with("tests_") {
            odd.push(format!("{}: name it <file>_tests.rs", f.display()));
        }
        if let Some(tested) = stem.strip_suffix("_tests") {
            let beside = f.with_file_name(format!("{tested}.rs"));
            let folder = f.with_file_name(tested).join("mod.rs");
            if !beside.exists() && !folder.exists() {
                odd.push(format!("{}: no {tested}.rs beside it", f.display()));
            }
        }
    }
    assert!(odd.is_empty(), "{}", odd.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle_and_an_upward_import() {
    // The checker must be able to fail: a tiny crate with both faults.
    let dir = tempfile::tempdir().expect("temp dir");
    let s = dir.path();
    std::fs::create_dir_all(s.join("plan")).expect("mkdir");
    std::fs::write(s.join("lib.rs"), "pub mod inventory;\npub mod plan;\n").expect("write");
    std::fs::write(
        s.join("inventory.rs"),
        "use crate::plan::Plan;\npub struct Image(Plan);\n",
    )
    .expect("write");
    std::fs::write(
        s.join("plan/mod.rs"),
        "mod decide;\nmod model;\npub use model::Plan;\npub use decide::plan;\n",
    )
    .expect("write");
    std::fs::write(
        s.join("plan/model.rs"),
        "use super::decide::Step;\npub struct Plan(Step);\n",
    )
    .expect("write");
    std::fs::write(
        s.join("plan/decide.rs"),
        "use super::Plan;\nuse crate::inventory::Image;\npub struct Step;\npub fn plan(_: &Image) -> Option<Plan> { None }\n",
    )
    .expect("write");
    let c = Crate::load(s);
    let edges = c.edges();
    let nodes: BTreeSet<usize> = (0..c.modules.len()).map(|m| c.file_of(m)).collect();
    let found = cycles(&nodes, &edges);
    let names: Vec<String> = found
        .iter()
        .flat_map(|scc| scc.iter().map(|&m| c.name(m)))
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("model.rs"))
            && names.iter().any(|n| n.ends_with("decide.rs")),
        "the model ↔ decide cycle is found: {names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("inventory.rs")),
        "the inventory ↔ plan cycle is found: {names:?}"
    );
    let upward: Vec<_> = edges
        .iter()
        .filter(|&&(f, t)| {
            let (Some(a), Some(b)) = (c.top(f), c.top(t)) else {
                return false;
            };
            a != b && floor_of(b) > floor_of(a)
        })
        .collect();
    assert_eq!(upward.len(), 1, "inventory → plan is upward: {upward:?}");
}
