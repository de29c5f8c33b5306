#!/usr/bin/env python3
"""Checks the layout ARCHITECTURE.md describes, and fails (exit 1) with what broke it:

- no two modules of one crate import each other in a circle, and no room reaches into a room it
  must not (handlers never call handlers, the store never calls operations, ...);
- no SQL outside `worker/src/store/`;
- no domain state or kind compared as text outside (de)serialisation: statuses, triggers and
  kinds are `shared::status` enums, compared as values.

Rust does not forbid circular `use` between modules, and nothing in the ecosystem checks it on
stable without nightly-only tooling (cargo-modules needs rust-analyzer's internals and prints a
graph, not a verdict), so this reads the sources: every `crate::…`, `super::…` and `self::…` path
is resolved to the file that defines the module it names. A module composing its own submodules
(a parent using its children) is the module tree itself and is not counted; every other
reference is an edge, and the edges of each crate must form no cycle.

Usage: scripts/check-layout.py            # every check
       scripts/check-layout.py --graph    # also print the import edges
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["shared/src", "worker/src", "agent/src", "console/src", "tests/src"]

# Rooms that must not reach into others: (crate, from-prefix, to-prefix, reason).
FORBIDDEN = [
    ("worker/src", "store", "api", "the store knows tables, not requests"),
    ("worker/src", "store", "ops", "the store knows tables, not runs"),
    ("worker/src", "ops", "api", "operations are called by handlers, never the reverse"),
    ("worker/src", "ops", "router", "operations are called by handlers, never the reverse"),
    ("agent/src", "storage", "exec", "storage backends do not know commands"),
    ("agent/src", "pipeline", "exec", "the data path does not know commands"),
    ("agent/src", "restore", "exec", "the restore path does not know commands"),
]


def module_of(rel):
    """`api/records.rs` -> ('api', 'records'); `api/mod.rs` -> ('api',); `lib.rs` -> ()."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments_and_strings(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return text


def strip_tests(text):
    """Drops `#[cfg(test)] mod … { … }` blocks: tests may reach anywhere."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_use_groups(text):
    """`use crate::a::{b, c::{d, e}};` -> the paths crate::a::b, crate::a::c::d, crate::a::c::e."""
    paths = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)(?:::\w+)*(?:::\{)?)", text):
        start = m.start(1)
        depth, j = 0, start
        while j < len(text) and text[j] != ";":
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        paths.extend(flatten(text[start:j].replace(" ", "").replace("\n", "")))
    return paths


def flatten(tree):
    m = re.match(r"^([\w:]*?)(?:::)?\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"as\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    out = []
    for item in filter(None, items):
        for sub in flatten(item):
            out.append(prefix + "::" + sub if prefix else sub)
    return out


def resolve(path, here, modules):
    """The longest module (a file) that `path` names, relative to the module `here`."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    else:
        base = here
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    best = base
    for k in range(1, len(segs) + 1):
        cand = base + tuple(segs[:k])
        if cand in modules:
            best = cand
        else:
            break
    return best


def graph(crate):
    src = os.path.join(ROOT, crate)
    files = {}
    for dirpath, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, n), src)
                files[module_of(rel)] = os.path.join(dirpath, n)
    edges = {m: set() for m in files}
    for mod, path in files.items():
        with open(path, encoding="utf-8") as f:
            text = strip_tests(strip_comments_and_strings(f.read()))
        refs = expand_use_groups(text)
        refs += re.findall(r"\b((?:crate|super)(?:::\w+)+)", text)
        for ref in refs:
            target = resolve(ref, mod, files)
            # A module composing its own submodules is the tree itself, not an import.
            if target == mod or target[: len(mod)] == mod:
                continue
            edges[mod].add(target)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def name(mod):
    return "::".join(mod) or "crate"


def self_test():
    """The checker checks itself first, so a broken checker cannot pass everything."""
    mods = {(): 1, ("api",): 1, ("api", "a"): 1, ("api", "b"): 1, ("store",): 1}
    assert resolve("crate::api::a::Thing", ("api", "b"), mods) == ("api", "a")
    assert resolve("super::a::f", ("api", "b"), mods) == ("api", "a")
    assert resolve("crate::store", ("api",), mods) == ("store",)
    assert flatten("crate::api::{a::X,b::{Y,Z}}") == ["crate::api::a::X", "crate::api::b::Y", "crate::api::b::Z"]
    circle = {("a",): {("b",)}, ("b",): {("c",)}, ("c",): {("a",)}, ("d",): {("a",)}}
    assert cycles(circle) == [[("a",), ("b",), ("c",)]], cycles(circle)
    assert cycles({("a",): {("b",)}, ("b",): set()}) == []
    assert SQL.search('"SELECT id FROM nodes"') and not SQL.search('" with {}"')
    assert any(p.search('if r.status == "running" {') for p in AS_TEXT)
    assert not any(p.search("if r.status == RunStatus::Running {") for p in AS_TEXT)


def main():
    self_test()
    failed = False
    for crate in CRATES:
        edges = graph(crate)
        if "--graph" in sys.argv:
            for m in sorted(edges):
                for t in sorted(edges[m]):
                    print(f"{crate}: {name(m)} -> {name(t)}")
        for comp in cycles(edges):
            failed = True
            print(f"{crate}: import circle between {', '.join(name(m) for m in comp)}")
            members = set(comp)
            for m in comp:
                for t in sorted(edges[m] & members):
                    print(f"    {name(m)} -> {name(t)}")
        for c, frm, to, why in FORBIDDEN:
            if c != crate:
                continue
            for m, ts in edges.items():
                if m[:1] != (frm,):
                    continue
                for t in ts:
                    if t[:1] == (to,):
                        failed = True
                        print(f"{crate}: {name(m)} -> {name(t)}: {why}")
        # Handlers call operations and the store, never each other (api/mod.rs is their
        # shared request context, which every handler may use).
        if crate == "worker/src":
            for m, ts in edges.items():
                if m[:1] == ("api",) and len(m) > 1:
                    for t in ts:
                        if t[:1] == ("api",) and len(t) > 1 and t[:2] != m[:2]:
                            failed = True
                            print(f"{crate}: {name(m)} -> {name(t)}: handlers do not call handlers")
    failed |= check_text()
    if failed:
        sys.exit(1)
    print("layout: no import circles, no forbidden reaches, no SQL outside the store, no state compared as text")


SQL = re.compile(r'"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|PRAGMA|WITH)\s')
# `status == "success"`, `"failed" != r.status`, `kind.as_str() == "…"`, `match x.status.as_str()`.
WORD = r"\w*(?:status|kind|trigger|outcome)\w*"
AS_TEXT = [
    re.compile(WORD + r'(?:\.as_str\(\)|\.as_deref\(\))?\s*[!=]=\s*(?:Some\()?"'),
    re.compile(r'"[a-z_]+"\)?\s*[!=]=\s*[\w.]*' + WORD),
    re.compile(r"match\s+[\w.]*" + WORD + r"\.as_str\(\)"),
]


def check_text():
    """SQL only in the store; states never compared as text (tests may compare what they read)."""
    failed = False
    for crate in ["worker/src", "agent/src", "console/src", "shared/src"]:
        src = os.path.join(ROOT, crate)
        for dirpath, _, names in os.walk(src):
            for n in sorted(names):
                if not n.endswith(".rs"):
                    continue
                path = os.path.join(dirpath, n)
                rel = os.path.relpath(path, ROOT)
                with open(path, encoding="utf-8") as f:
                    text = strip_tests(re.sub(r"//[^\n]*", "", f.read()))
                for no, line in enumerate(text.split("\n"), 1):
                    if crate == "worker/src" and "/store/" not in path and SQL.search(line):
                        failed = True
                        print(f"{rel}: SQL outside the store: {line.strip()}")
                    if any(p.search(line) for p in AS_TEXT):
                        failed = True
                        print(f"{rel}: a state compared as text: {line.strip()}")
    return failed


if __name__ == "__main__":
    main()
