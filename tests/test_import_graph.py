"""No import cycles between the project's modules, counting imports inside functions and under TYPE_CHECKING.

A cycle makes what a module sees depend on which one was imported first (the `python -m pipelines.cli`
command order did), and keeps the modules from being understood or tested one at a time. The layering
between the packages (pipelines -> steps -> components, no zenml in components) is checked by
`lint-imports` ([tool.importlinter] in pyproject.toml); this test covers cycles inside a package too.
Only reads the source (grimp parses it): nothing is imported, so it is fast.
"""
from __future__ import annotations

import grimp

PACKAGES = ("components", "steps", "pipelines", "benchmarks")


def import_cycles(graph: grimp.ImportGraph, packages=PACKAGES) -> list[list[str]]:
    """Every group of modules that import one another, directly or through each other (the strongly
    connected components of the import graph, by Tarjan's algorithm, iteratively), each sorted."""
    modules = sorted(m for m in graph.modules if m.split(".")[0] in packages)
    known = set(modules)
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in known) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in edges[node]:  # a module importing itself is a cycle too
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(groups)


def describe(graph: grimp.ImportGraph, group: list[str]) -> str:
    """The group's modules, then every import between them and where it is, so the failure says what to move."""
    lines = [", ".join(group)]
    for importer in group:
        for imported in group:
            for d in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer} -> {imported} (line {d['line_number']}: {d['line_contents'].strip()})")
    return "\n".join(lines)


def test_the_project_has_no_import_cycles():
    # exclude_type_checking_imports=False (the default, spelled out): a type-only cycle still ties two modules
    # together, and is one `if TYPE_CHECKING:` removed from a real one.
    graph = grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=False)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(describe(graph, c) for c in cycles)


def test_the_cycle_finder_reports_whole_cycles_and_self_imports():
    # The check's own check, on a hand-made graph: a -> b at module level, b -> c inside a function
    # (grimp records both the same way), c -> a; d -> a, outside that cycle, and d -> d.
    graph = grimp.ImportGraph()
    for module in ("components", "components.a", "components.b", "components.c", "components.d"):
        graph.add_module(module)
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")):
        graph.add_import(importer=f"components.{importer}", imported=f"components.{imported}", line_number=1,
                         line_contents=f"from components import {imported}")
    graph.add_import(importer="components.d", imported="components.d", line_number=2,
                     line_contents="from components import d")  # a module importing itself
    assert import_cycles(graph) == [["components.a", "components.b", "components.c"], ["components.d"]]
    text = describe(graph, import_cycles(graph)[0])
    assert text.splitlines()[0] == "components.a, components.b, components.c"
    assert "components.c -> components.a (line 1: from components import a)" in text
    assert "components.d" not in text
