"""The cut of an image model whose frozen layers are a prefix (last-n, chosen modules): found on its torch.fx
graph. The first operation that uses a trainable parameter marks the trainable part; the one activation
computed before it that is still read from there on is the cut. A skip connection across that point (two
activations read), or a model torch.fx cannot trace, means there is no cut.

The prefix and the tail are GraphModules that share the model's own modules, so the optimiser, checkpoints
and BatchNorm modes act on them as on the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import fx, nn


@dataclass
class GraphCut:
    """A model split on its graph: `prefix(x)` gives the cut's activation, `tail(activation)` the output."""

    where: str  # the cut's node, for the log
    prefix: fx.GraphModule
    tail: fx.GraphModule
    frozen_modules: list[str]  # modules (and attributes) the prefix reads: their state makes the features


def _uses_trainable(node: fx.Node, trainable: set[str]) -> bool:
    if node.op in ("call_module", "get_attr"):
        target = str(node.target)
        return any(t == target or t.startswith(target + ".") for t in trainable)
    return False


def graph_cut(model: nn.Module) -> GraphCut | str:
    """The cut below the first trainable layer of `model` (a string says why there is none)."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if not trainable:
        return "nothing trains"
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as e:  # noqa: BLE001 - tracing fails on data-dependent control flow; then no cut
        return f"its graph cannot be traced ({type(e).__name__})"
    nodes = list(graph.nodes)
    first = next((i for i, n in enumerate(nodes) if _uses_trainable(n, trainable)), None)
    if first is None:
        return "no traced operation uses the trainable parameters"
    before = set(nodes[:first])
    read_later = [n for n in nodes[:first] if any(user not in before for user in n.users)]
    if len(read_later) != 1:
        return f"{len(read_later)} activations cross the cut (a skip connection)"
    cut = read_later[0]
    if cut.op == "placeholder":
        return "the first layer trains"
    frozen = sorted({str(n.target) for n in nodes[: nodes.index(cut) + 1] if n.op in ("call_module", "get_attr")})
    try:
        tail = _tail(model, nodes, cut)
    except KeyError:  # a later operation reads an activation from below the cut
        return "an activation from below the cut is read above it"
    return GraphCut(cut.name, _prefix(model, graph, cut), tail, frozen)


def _prefix(model: nn.Module, graph: fx.Graph, cut: fx.Node) -> fx.GraphModule:
    new = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in graph.nodes:
        env[node] = new.node_copy(node, lambda n: env[n])
        if node is cut:
            break
    new.output(env[cut])
    return fx.GraphModule(model, new)


def _tail(model: nn.Module, nodes: list[fx.Node], cut: fx.Node) -> fx.GraphModule:
    new = fx.Graph()
    env: dict[fx.Node, fx.Node] = {cut: new.placeholder("features")}
    for node in nodes[nodes.index(cut) + 1 :]:
        if node.op == "placeholder":
            continue
        env[node] = new.node_copy(node, lambda n: env[n])
    return fx.GraphModule(model, new)
