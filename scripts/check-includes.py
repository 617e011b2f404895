#!/usr/bin/env python3
"""check-includes.py: fail if the project's own modules include each other
in a circle.

A module is a .c file with the header of the same name beside it:
api/http.c and api/http.h are the module api/http. A header with no .c of
its name (a folder's internal header such as wal/wal_int.h, or srv.h) is
not a module of its own: what it includes counts for each file that
includes it. Module A depends on module B when A's .c or .h includes B's
header, directly or through such headers. The graph of these dependencies
must have no cycle: a layer reads only the layers below it, so each file can
be read, tested and changed knowing only what it includes (a folder's
internal header including the folder's public one is the usual layering:
wal.c -> wal_int.h -> wal.h is wal using itself, not a circle). Headers
are found as the compiler does with our include paths: beside the including
file first, then anywhere in the tree (two tracked headers with one name are
an error, since which one is meant would depend on the include order).

Usage: scripts/check-includes.py [root]   (exit 0: no circle; 1: circles,
each printed as a path of modules).
"""
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def tracked(root):
    out = subprocess.run(["git", "-C", root, "ls-files", "*.c", "*.h"],
                         capture_output=True, text=True, check=True).stdout
    return [p for p in out.split("\n") if p]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    files = tracked(root)
    by_name = {}
    for p in files:
        if p.endswith(".h"):
            by_name.setdefault(os.path.basename(p), []).append(p)
    clash = {n: ps for n, ps in by_name.items() if len(ps) > 1}
    direct = {}  # file -> the tracked files it includes
    for p in files:
        with open(os.path.join(root, p), encoding="utf-8",
                  errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            beside = os.path.normpath(os.path.join(os.path.dirname(p), inc))
            if beside in files:
                target = beside
            elif os.path.basename(inc) in by_name:
                name = os.path.basename(inc)
                if name in clash:
                    print(f"{p}: \"{inc}\" is ambiguous: "
                          + ", ".join(clash[name]))
                    return 1
                target = by_name[name][0]
            else:
                continue  # a generated or system header
            direct.setdefault(p, set()).add(target)
    sources = {os.path.splitext(p)[0] for p in files if p.endswith(".c")}

    def module(p):
        stem = os.path.splitext(p)[0]
        return stem if stem in sources else None

    deps = {}
    for p in files:
        mod = module(p)
        if mod is None:
            continue
        seen, queue = set(), list(direct.get(p, ()))
        while queue:  # through headers that are no module's
            t = queue.pop()
            if t in seen:
                continue
            seen.add(t)
            dep = module(t)
            if dep is None:
                queue.extend(direct.get(t, ()))
            elif dep != mod:
                deps.setdefault(mod, set()).add(dep)
    cycles = find_cycles(deps)
    for c in cycles:
        print("include circle: " + " -> ".join(c + [c[0]]))
    return 1 if cycles else 0


def find_cycles(deps):
    """Tarjan's strongly connected components; one cycle per component of
    more than one module, found by walking inside it."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, ())):
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
                comps.append(set(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(deps):
        if v not in index:
            visit(v)
    cycles = []
    for comp in comps:
        start = min(comp)
        path, seen, v = [start], {start}, start
        while True:
            v = min(w for w in deps[v] if w in comp)
            if v in seen:
                cycles.append(path[path.index(v):])
                break
            path.append(v)
            seen.add(v)
    return cycles


if __name__ == "__main__":
    sys.exit(main())
