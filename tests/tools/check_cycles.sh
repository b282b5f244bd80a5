#!/bin/sh
# check_cycles.sh [BUILD_DIR]: fail on any cycle between the source files of
# engine/, proto/, config/ and server/.
#
# The graph is built from the object files with nm: file A depends on file B
# when A's object has an undefined symbol (nm type U) that B's object
# defines (any other type but weak, V/v/W/w). Every strongly connected
# component of more than one file is a cycle; each is printed with the
# symbols that tie it, and the script exits 1. It exits 0 when the graph is
# acyclic and 2 when the build directory holds no objects (build first:
# ninja -C BUILD_DIR).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
objs=$(find "$BUILD/engine" "$BUILD/proto" "$BUILD/config" "$BUILD/server" -name '*.c.o' \
    -path '*.a.p/*' 2>/dev/null | sort)
[ -n "$objs" ] || { echo "check_cycles: no objects under $BUILD (build first)" >&2; exit 2; }
# shellcheck disable=SC2086
nm -A $objs | python3 -c '
import sys, re, collections
import os
defs, uses = {}, collections.defaultdict(set)
# meson names the object of <top>/a/b.c <build>/<top>/lib<name>.a.p/a_b.c.o;
# map it back to the source path by mangling every source the same way
mangled = {}
for top in ("engine", "proto", "config", "server"):
    for d, _, fs in os.walk(top):
        for f in fs:
            if f.endswith(".c"):
                rel = os.path.relpath(os.path.join(d, f), top)
                mangled[(top, rel.replace("/", "_"))] = os.path.join(d, f)
def source(obj):
    head, tail = obj.split(".a.p/")
    top = os.path.dirname(head).split("/")[-1]
    return mangled.get((top, tail[:-2]), obj)
for line in sys.stdin:
    m = re.match(r"(.+?\.c\.o):\s*(?:[0-9a-fA-F]+)?\s+(\w)\s+(\S+)$", line.rstrip())
    if not m: continue
    obj, kind, sym = m.groups()
    name = source(obj)
    if kind == "U": uses[name].add(sym)
    elif kind not in "VvWw": defs.setdefault(sym, name)
    uses.setdefault(name, set())
edges = {a: {defs[s] for s in syms if s in defs and defs[s] != a} for a, syms in uses.items()}
# Tarjan, iterative
index, low, onstack, stack, sccs, n = {}, {}, set(), [], [], [0]
for root in sorted(edges):
    if root in index: continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = n[0]; n[0] += 1; stack.append(root); onstack.add(root)
    while work:
        v, it = work[-1]
        for w in it:
            if w not in index:
                index[w] = low[w] = n[0]; n[0] += 1; stack.append(w); onstack.add(w)
                work.append((w, iter(sorted(edges[w])))); break
            if w in onstack: low[v] = min(low[v], index[w])
        else:
            work.pop()
            if work: low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); onstack.discard(w); comp.append(w)
                    if w == v: break
                if len(comp) > 1: sccs.append(sorted(comp))
for comp in sccs:
    print("cycle between %d files:" % len(comp))
    cs = set(comp)
    for a in comp:
        for b in sorted(edges[a] & cs):
            syms = sorted(s for s in uses[a] if defs.get(s) == b)
            print("  %s -> %s: %s" % (a, b, " ".join(syms[:4]) + (" ..." if len(syms) > 4 else "")))
print("check_cycles: %d files, %d cycles" % (len(edges), len(sccs)))
sys.exit(1 if sccs else 0)
'
