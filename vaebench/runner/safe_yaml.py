"""YAML for suite files, bounded so a small file cannot exhaust the machine.

PyYAML's safe loader shares the object behind an alias, so a "billion laughs" document loads in
microseconds as a graph of a few dozen nodes -- and then explodes in whatever walks it as a tree
(validation, deepcopy, JSON). We compose the node graph, count the nodes it would have written
out in full (memoised per node, so the count itself is linear in the graph), and refuse beyond
MAX_NODES before anything is constructed. MAX_BYTES refuses huge files before parsing at all.
"""

from __future__ import annotations

import yaml

from vaebench.errors import VaebenchError

# The shipped suites have a few hundred nodes; a suite of 10,000 runs still needs far fewer.
MAX_NODES = 100_000
MAX_BYTES = 1_000_000


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the document with every alias written out; stops counting past `limit`."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes or (not children_done and id(node) in visiting):
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value))
        if children_done:
            # a child still missing is a cycle (`&a [*a]`): count it once
            sizes[id(node)] = min(limit + 1, 1 + sum(sizes.get(id(c), 1) for c in children))
        else:
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_bounded(text: str, where: str, max_nodes: int = MAX_NODES) -> object:
    """yaml.safe_load, refusing documents that expand to more than `max_nodes` nodes."""
    if len(text) > MAX_BYTES:
        raise VaebenchError(f"{where}: {len(text):,} characters; suite files are limited to "
                            f"{MAX_BYTES:,} (list seeds and grids compactly, or split the suite)")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, max_nodes)
        if size > max_nodes:
            raise VaebenchError(
                f"{where}: the YAML expands to more than {max_nodes:,} values once its aliases "
                f"(*name) are written out; refusing it (an alias bomb?). Use fewer or smaller "
                f"aliases.")
        return loader.construct_document(node)
    finally:
        loader.dispose()
