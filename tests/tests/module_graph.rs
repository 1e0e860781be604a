//! Within each crate of the workspace, modules import one way: no module cycle.
//!
//! The check parses every crate root (`src/lib.rs`, `src/main.rs`, `src/bin/*`) with `syn`, builds the
//! tree of modules (files and inline `mod` blocks) and collects every `crate::..` and `super::..` path:
//! in `use` items, in expressions, types and patterns, and in the tokens of macro invocations. Each path
//! is resolved to the deepest module that exists.
//!
//! The rule is layering: an edge between modules A and B is lifted to the two children of their nearest
//! common ancestor that contain A and B, and at every level the graph of siblings must have no strongly
//! connected component of more than one module. An edge between a module and its own ancestor is not a
//! layering edge: a parent re-exporting its child, or a child using its parent's items, is fine.
//!
//! Every member of the workspace must pass; each cycle found is printed with one import site per edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Item, UseTree};

/// A module, as the names below the crate root (empty for the root).
type ModPath = Vec<String>;

/// Where a reference is written.
#[derive(Clone, Debug)]
struct Site {
    file: String,
    line: usize,
    /// The path as written, such as `super::args::Spanned`.
    written: String,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} `{}`", self.file, self.line, self.written)
    }
}

/// A path to something in the same crate, from the module that writes it.
#[derive(Clone, Debug)]
struct Reference {
    from: ModPath,
    /// The path from the crate root, not yet resolved to a module.
    to: Vec<String>,
    site: Site,
}

/// One crate root: its modules and the references between them.
#[derive(Debug, Default)]
struct ModuleTree {
    modules: BTreeSet<ModPath>,
    references: Vec<Reference>,
    /// The names each module imports with `use` (re-exports among them): `(module, name)` to the path
    /// as written there. A reference through a re-export is followed to where the item comes from.
    imports: BTreeMap<(ModPath, String), Vec<String>>,
}

/// Siblings under `parent` that import each other in a cycle, with one import site per edge.
#[derive(Debug)]
struct Cycle {
    parent: ModPath,
    modules: Vec<String>,
    /// `(from, to, site)`: sibling `from` imports from sibling `to`, at `site`.
    edges: Vec<(String, String, Site)>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "modules of `{}` import each other in a cycle: {}",
            display(&self.parent),
            self.modules.join(", ")
        )?;
        for (from, to, site) in &self.edges {
            writeln!(f, "    {from} -> {to}    at {site}")?;
        }
        Ok(())
    }
}

fn display(module: &[String]) -> String {
    if module.is_empty() { "crate".to_owned() } else { format!("crate::{}", module.join("::")) }
}

/// Reads the module tree of the crate whose root file is `root`; `read` gives a file's text, or `None`
/// when it does not exist, and `shown` how to name a file in sites.
fn load(
    root: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
    shown: &dyn Fn(&Path) -> String,
) -> Result<ModuleTree, String> {
    let mut loader = Loader { read, shown, tree: ModuleTree::default() };
    loader.file(root, Vec::new(), root.parent().unwrap_or(Path::new("")))?;
    Ok(loader.tree)
}

/// The walk over a crate's files.
struct Loader<'a> {
    read: &'a dyn Fn(&Path) -> Option<String>,
    shown: &'a dyn Fn(&Path) -> String,
    tree: ModuleTree,
}

impl Loader<'_> {
    /// Loads `file`, the source of `module`, whose child modules' files are in `children_dir`.
    fn file(&mut self, file: &Path, module: ModPath, children_dir: &Path) -> Result<(), String> {
        let text = (self.read)(file).ok_or_else(|| format!("cannot read {}", file.display()))?;
        let parsed = syn::parse_file(&text).map_err(|error| format!("{}: {error}", file.display()))?;
        let file_name = (self.shown)(file);
        self.items(&parsed.items, &module, children_dir, &file_name)?;
        let mut collector = Collector { module, file: file_name, references: Vec::new() };
        collector.visit_file(&parsed);
        self.tree.modules.insert(collector.module);
        self.tree.references.extend(collector.references);
        Ok(())
    }

    /// Loads the modules declared among `items`, which belong to `module` in the file `file_name`.
    fn items(&mut self, items: &[Item], module: &ModPath, children_dir: &Path, file_name: &str) -> Result<(), String> {
        for item in items {
            if let Item::Use(used) = item {
                let mut imported = Vec::new();
                flatten(&mut Vec::new(), &used.tree, &mut imported);
                for (name, path) in imported {
                    self.tree.imports.insert((module.clone(), name), path);
                }
            }
            let Item::Mod(declared) = item else { continue };
            let name = declared.ident.to_string();
            let child: ModPath = module.iter().cloned().chain([name.clone()]).collect();
            let child_dir = children_dir.join(&name);
            if let Some((_, items)) = &declared.content {
                // Inline: the collector attributes its references to `child` when it visits the file.
                self.tree.modules.insert(child.clone());
                self.items(items, &child, &child_dir, file_name)?;
                continue;
            }
            if declared.attrs.iter().any(|attr| attr.path().is_ident("path")) {
                return Err(format!("{file_name}: `#[path]` on `mod {name}` is not supported by this check"));
            }
            let flat = children_dir.join(format!("{name}.rs"));
            let nested = child_dir.join("mod.rs");
            let found = if (self.read)(&flat).is_some() {
                flat
            } else if (self.read)(&nested).is_some() {
                nested
            } else {
                return Err(format!("{file_name}: no file for `mod {name}`"));
            };
            self.file(&found, child, &child_dir)?;
        }
        Ok(())
    }
}

/// The names a `use` tree brings in, each with its path as written; globs name nothing in particular.
fn flatten(prefix: &mut Vec<String>, tree: &UseTree, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        UseTree::Path(path) => {
            prefix.push(path.ident.to_string());
            flatten(prefix, &path.tree, out);
            prefix.pop();
        }
        UseTree::Name(name) if name.ident == "self" => {
            if let Some(last) = prefix.last() {
                out.push((last.clone(), prefix.clone()));
            }
        }
        UseTree::Name(name) => {
            let path = prefix.iter().cloned().chain([name.ident.to_string()]).collect();
            out.push((name.ident.to_string(), path));
        }
        UseTree::Rename(rename) => {
            let path: Vec<String> = prefix.iter().cloned().chain([rename.ident.to_string()]).collect();
            let path = if rename.ident == "self" { prefix.clone() } else { path };
            out.push((rename.rename.to_string(), path));
        }
        UseTree::Glob(_) => {}
        UseTree::Group(group) => {
            for tree in &group.items {
                flatten(prefix, tree, out);
            }
        }
    }
}

/// Collects the `crate::` and `super::` paths of one file, each from the module that writes it.
struct Collector {
    module: ModPath,
    file: String,
    references: Vec<Reference>,
}

impl Collector {
    /// Records `segments` (`crate`/`super` first) written at `line`.
    fn record(&mut self, segments: &[String], line: usize) {
        let mut to = match segments.first().map(String::as_str) {
            Some("crate" | "$crate") => Vec::new(),
            Some("super") => self.module.clone(),
            _ => return,
        };
        let mut rest = &segments[1..];
        if segments[0] == "super" {
            to.pop();
            while rest.first().is_some_and(|segment| segment == "super") {
                to.pop();
                rest = &rest[1..];
            }
        }
        to.extend(rest.iter().filter(|segment| *segment != "self").cloned());
        let site = Site { file: self.file.clone(), line, written: segments.join("::") };
        self.references.push(Reference { from: self.module.clone(), to, site });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &UseTree) {
        match tree {
            UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            UseTree::Name(name) => {
                prefix.push(name.ident.to_string());
                self.record(prefix, name.ident.span().start().line);
                prefix.pop();
            }
            UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                self.record(prefix, rename.ident.span().start().line);
                prefix.pop();
            }
            UseTree::Glob(glob) => self.record(prefix, glob.star_token.spans[0].start().line),
            UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// Paths in a macro's tokens, which `syn` does not parse: `crate :: a :: b`, `super :: x`.
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut at = 0;
        while at < tokens.len() {
            match &tokens[at] {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident) if ident == "crate" || ident == "super" => {
                    let mut segments = vec![ident.to_string()];
                    let mut next = at + 1;
                    while let (
                        Some(TokenTree::Punct(first)),
                        Some(TokenTree::Punct(second)),
                        Some(TokenTree::Ident(name)),
                    ) = (tokens.get(next), tokens.get(next + 1), tokens.get(next + 2))
                    {
                        if !(first.as_char() == ':' && first.spacing() == Spacing::Joint && second.as_char() == ':') {
                            break;
                        }
                        segments.push(name.to_string());
                        next += 3;
                    }
                    if segments.len() > 1 {
                        self.record(&segments, ident.span().start().line);
                    }
                    at = next;
                    continue;
                }
                _ => {}
            }
            at += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        // A `mod x;` is its own file, collected on its own; an inline module's items belong to it.
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments: Vec<String> = path.segments.iter().map(|segment| segment.ident.to_string()).collect();
            if let Some(first) = path.segments.first() {
                self.record(&segments, first.ident.span().start().line);
            }
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}

/// How many re-exports a path is followed through before the search gives up (a loop of `use`s).
const MAX_HOPS: usize = 16;

/// The deepest module that `path` (from the crate root) names or reaches through, following a name
/// that a module imports (such as a parent's `pub use child::Item`) to where the name comes from.
fn resolve(tree: &ModuleTree, path: &[String], hops: usize) -> ModPath {
    let depth = (0..=path.len()).rev().find(|len| tree.modules.contains(&path[..*len])).unwrap_or(0);
    let module = path[..depth].to_vec();
    if depth < path.len() && hops < MAX_HOPS {
        let imported = tree.imports.get(&(module.clone(), path[depth].clone()));
        if let Some(target) = imported.and_then(|written| absolute(tree, &module, written, hops)) {
            let followed: Vec<String> = target.into_iter().chain(path[depth + 1..].iter().cloned()).collect();
            return resolve(tree, &followed, hops + 1);
        }
    }
    module
}

/// `written`, a `use` path of `module`, from the crate root; `None` for another crate's path.
fn absolute(tree: &ModuleTree, module: &ModPath, written: &[String], hops: usize) -> Option<Vec<String>> {
    let (first, rest) = written.split_first()?;
    let mut base = match first.as_str() {
        "crate" | "$crate" => Vec::new(),
        "self" => module.clone(),
        "super" => {
            let mut base = module.clone();
            base.pop();
            let mut rest = rest;
            while let Some(("super", more)) = rest.split_first().map(|(head, more)| (head.as_str(), more)) {
                base.pop();
                rest = more;
            }
            return Some(base.into_iter().chain(rest.iter().cloned()).collect());
        }
        // `use child::Item` names a child module, `use imported::Item` a name imported beside it.
        _ => {
            let child: ModPath = module.iter().cloned().chain([first.clone()]).collect();
            if tree.modules.contains(&child) {
                child
            } else {
                let imported = tree.imports.get(&(module.clone(), first.clone()))?;
                if hops >= MAX_HOPS || imported.as_slice() == written {
                    return None;
                }
                absolute(tree, module, imported, hops + 1)?
            }
        }
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The cycles among siblings at every level of `tree`.
fn cycles(tree: &ModuleTree) -> Vec<Cycle> {
    // Per parent, the sibling edges and the first site seen for each.
    let mut levels: BTreeMap<ModPath, BTreeMap<(String, String), Site>> = BTreeMap::new();
    for reference in &tree.references {
        let (from, to) = (&reference.from, resolve(tree, &reference.to, 0));
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if common == from.len() || common == to.len() {
            // The same module, an ancestor or a descendant: not a layering edge.
            continue;
        }
        levels
            .entry(from[..common].to_vec())
            .or_default()
            .entry((from[common].clone(), to[common].clone()))
            .or_insert_with(|| reference.site.clone());
    }
    let mut found = Vec::new();
    for (parent, edges) in levels {
        for component in strongly_connected(edges.keys()) {
            let edges = edges
                .iter()
                .filter(|((from, to), _)| component.contains(from) && component.contains(to))
                .map(|((from, to), site)| (from.clone(), to.clone(), site.clone()))
                .collect();
            found.push(Cycle { parent: parent.clone(), modules: component, edges });
        }
    }
    found
}

/// The strongly connected components of more than one node (Tarjan's algorithm), each sorted.
fn strongly_connected<'a>(edges: impl Iterator<Item = &'a (String, String)>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, node: &'a str) {
            let index = self.index.len();
            self.index.insert(node, index);
            self.low.insert(node, index);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.next.get(node).cloned().unwrap_or_default() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_owned());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges {
        next.entry(from).or_default().push(to);
        next.entry(to).or_default();
    }
    let nodes: Vec<&str> = next.keys().copied().collect();
    let mut tarjan = Tarjan {
        next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in nodes {
        if !tarjan.index.contains_key(node) {
            tarjan.visit(node);
        }
    }
    tarjan.components
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace").to_path_buf()
}

/// The workspace's members, as directories relative to its root.
fn members() -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).expect("the workspace manifest");
    let manifest: toml::Table = manifest.parse().expect("a valid manifest");
    manifest["workspace"]["members"]
        .as_array()
        .expect("a list of members")
        .iter()
        .map(|member| member.as_str().expect("a member directory").to_owned())
        .collect()
}

/// The cycles of every crate root of workspace member `member` (`"macros"`, `"runtime"`, ...), each with
/// the root's file name (`src/lib.rs`, `src/bin/x.rs`); an error when a module's file cannot be read.
fn member_cycles(member: &str) -> Result<Vec<(String, Cycle)>, String> {
    let root = workspace();
    let src = root.join(member).join("src");
    let mut roots: Vec<PathBuf> =
        ["lib.rs", "main.rs"].iter().map(|file| src.join(file)).filter(|file| file.exists()).collect();
    if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
        let mut bins: Vec<PathBuf> = bins
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .map(|path| if path.is_dir() { path.join("main.rs") } else { path })
            .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
            .collect();
        bins.sort();
        roots.extend(bins);
    }
    let read = |file: &Path| std::fs::read_to_string(file).ok();
    let shown = |file: &Path| file.strip_prefix(&root).unwrap_or(file).display().to_string();
    let mut found = Vec::new();
    for crate_root in roots {
        let tree = load(&crate_root, &read, &shown)?;
        found.extend(cycles(&tree).into_iter().map(|cycle| (shown(&crate_root), cycle)));
    }
    Ok(found)
}

#[test]
fn no_crate_of_the_workspace_has_a_module_cycle() {
    let members = members();
    assert!(members.len() >= 7, "every member is read: {members:?}");
    let mut failures = Vec::new();
    for member in &members {
        let found = member_cycles(member).unwrap_or_else(|error| panic!("{member}: {error}"));
        for (crate_root, cycle) in &found {
            println!("{member} ({crate_root}): {cycle}");
        }
        if !found.is_empty() {
            failures.push(member.as_str());
        }
    }
    assert!(failures.is_empty(), "module cycles in {failures:?}; each is printed above");
}

/// Loads a crate from in-memory files, `src/lib.rs` first.
fn in_memory(files: &[(&str, &str)]) -> ModuleTree {
    let files: BTreeMap<PathBuf, String> =
        files.iter().map(|(name, text)| (PathBuf::from(name), (*text).to_owned())).collect();
    let read = |file: &Path| files.get(file).cloned();
    let shown = |file: &Path| file.display().to_string();
    load(Path::new("src/lib.rs"), &read, &shown).expect("the files load")
}

fn described(tree: &ModuleTree) -> Vec<String> {
    cycles(tree).iter().map(ToString::to_string).collect()
}

#[test]
fn finds_a_cycle_between_sibling_files_and_shows_each_import() {
    let tree = in_memory(&[
        ("src/lib.rs", "mod parse;\nmod check;\n"),
        ("src/parse.rs", "use crate::check::Rule;\n"),
        ("src/check.rs", "\n\nfn f() { let _ = super::parse::read(); }\n"),
    ]);
    assert_eq!(
        described(&tree),
        ["modules of `crate` import each other in a cycle: check, parse\n    \
          check -> parse    at src/check.rs:3 `super::parse::read`\n    \
          parse -> check    at src/parse.rs:1 `crate::check::Rule`\n"]
    );
}

#[test]
fn lifts_deep_modules_to_the_siblings_that_contain_them() {
    // `a::x` uses `b::y` and `b::y::z` uses `a`: the cycle is between `a` and `b`, found through a glob,
    // a group, inline modules and a path inside a macro.
    let tree = in_memory(&[
        ("src/lib.rs", "mod a { mod x { use crate::{b::y::{self}, other}; } }\nmod b;\nmod other {}\n"),
        ("src/b/mod.rs", "mod y { mod z { fn f() { assert!(super::super::super::a::ready()); } } }\n"),
    ]);
    let found = cycles(&tree);
    assert_eq!(found.len(), 1, "{:?}", described(&tree));
    assert_eq!(found[0].parent, Vec::<String>::new());
    assert_eq!(found[0].modules, ["a", "b"]);
    assert_eq!(found[0].edges[0].2.to_string(), "src/lib.rs:1 `crate::b::y::self`");
    assert_eq!(found[0].edges[1].2.to_string(), "src/b/mod.rs:1 `super::super::super::a::ready`");
}

#[test]
fn follows_re_exports_to_where_the_item_comes_from() {
    // `crate::Rejected` is the root's re-export of `rejected::Rejected`; `Verdict` goes through two.
    let tree = in_memory(&[
        ("src/lib.rs", "mod breaker;\nmod rejected;\npub use rejected::Rejected;\nuse breaker as b;\n"),
        (
            "src/breaker.rs",
            "use crate::Rejected;\nmod verdict { pub struct Verdict; }\npub use self::verdict::Verdict;\n",
        ),
        ("src/rejected.rs", "fn f(_: crate::b::Verdict) {}\n"),
    ]);
    let found = cycles(&tree);
    assert_eq!(found.len(), 1, "{:?}", described(&tree));
    assert_eq!(found[0].modules, ["breaker", "rejected"]);
    assert_eq!(found[0].edges[0].2.to_string(), "src/breaker.rs:1 `crate::Rejected`");
    assert_eq!(found[0].edges[1].2.to_string(), "src/rejected.rs:1 `crate::b::Verdict`");
}

#[test]
fn a_parent_and_its_child_using_each_other_are_not_a_cycle() {
    let tree = in_memory(&[
        ("src/lib.rs", "mod guards;\npub use guards::Plan;\nfn f() -> crate::guards::Plan { todo!() }\n"),
        (
            "src/guards.rs",
            "use super::*;\nuse crate::helper;\npub struct Plan;\n#[cfg(test)] mod tests { use super::*; }\n",
        ),
    ]);
    assert!(cycles(&tree).is_empty(), "{:?}", described(&tree));
}

#[test]
fn a_layered_tree_passes_at_every_level() {
    // parse <- validate <- expand at the top; inside `common`, `errors` <- `signature`.
    let tree = in_memory(&[
        ("src/lib.rs", "mod common;\nmod parse;\nmod validate;\nmod expand;\n"),
        ("src/common/mod.rs", "pub mod errors;\npub mod signature;\n"),
        ("src/common/errors.rs", "pub struct Errors;\n"),
        ("src/common/signature.rs", "use super::errors::Errors;\n"),
        ("src/parse.rs", "use crate::common::errors::Errors;\n"),
        ("src/validate.rs", "use crate::parse; use crate::common::signature;\n"),
        ("src/expand.rs", "use crate::validate::Plan; fn f(_: crate::parse::Args) {}\n"),
    ]);
    assert!(cycles(&tree).is_empty(), "{:?}", described(&tree));
    assert_eq!(tree.modules.len(), 7);
}

#[test]
fn finds_a_cycle_nested_below_the_root_and_not_above_it() {
    // `outer::a` and `outer::b` loop; `outer` itself is used one way from `user`.
    let tree = in_memory(&[(
        "src/lib.rs",
        "mod user { use crate::outer::a; }\nmod outer { mod a { use super::b::B; } mod b { use super::a::A; } }\n",
    )]);
    let found = cycles(&tree);
    assert_eq!(found.len(), 1, "{:?}", described(&tree));
    assert_eq!(found[0].parent, ["outer"]);
    assert_eq!(found[0].modules, ["a", "b"]);
}

#[test]
fn a_missing_module_file_is_an_error_not_a_pass() {
    let files: BTreeMap<PathBuf, String> = [(PathBuf::from("src/lib.rs"), "mod gone;\n".to_owned())].into();
    let read = |file: &Path| files.get(file).cloned();
    let error = load(Path::new("src/lib.rs"), &read, &|file| file.display().to_string()).expect_err("no file");
    assert_eq!(error, "src/lib.rs: no file for `mod gone`");
}
