"""``refcheck inspect``: what refcheck found in the user's code, written for the person who wrote it.

For each layer: the user's function or class, how it is called (adapter, layout), which
hyperparameters it supports; then what was not used and why, forward functions without a
backward, the deep-learning frameworks the code imports (its cases then fail unless
``--allow-frameworks``), and a starting mapping (TOML) for what discovery could not decide.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from .capabilities import describe_capabilities
from .contract import LayerFunctions
from .discover import Discovery
from ..specs import layer_spec

__all__ = ["frameworks_note", "inspect_text", "starting_mapping"]

_ADAPTERS = {
    "contract": "called as it is (refcheck's own calling convention)",
    "cs231n": "CS231n-style functions (conv_param / pool_param / bn_param dicts, cache-based backward)",
    "object": "a class: a new object per case, forward then backward",
    "mapping": "as your mapping file says",
    "coursera": "deeplearning.ai-style functions (channels last, hparameters dict, bias (1, 1, 1, n_C))",
    "derivative": "an activation and its derivative: backward is dout times the derivative",
    "mapping, cs231n": "named by your mapping file, called as CS231n-style functions (param dicts, cache-based backward)",
}


def _case_file_values(layer: str) -> dict[str, list]:
    """Each parameter's values in refcheck's own case files for ``layer`` (empty when it has none)."""
    from ..cases.spaces import load_spaces

    try:
        return {name: list(values) for space in load_spaces(None, [layer]) for name, values in space.params.items()}
    except Exception:  # noqa: BLE001 - the values only sharpen a description
        return {}


def _layer_block(layer: str, functions: LayerFunctions) -> list[str]:
    name = (functions.origin or layer).split(": ", 1)[-1]
    how = _ADAPTERS.get(functions.adapter, functions.adapter)
    update_rule = layer_spec(layer).is_update_rule
    if update_rule:
        how = ("CS231n update rule (w, dw, config) -> (next_w, config), state mapped to torch.optim's"
               if functions.adapter == "cs231n" else f"{how}: an update rule, one step per call, the state carried")
    lines = [f"{layer}: {name}", f"    how: {how}"]
    if functions.layout and not update_rule:
        probe_failed = any(note.startswith("probe call:") for note in functions.notes)
        how_found = "the first tried: no layout fitted the probe call" if probe_failed else \
            "found from output shapes on a probe call"
        lines.append(f"    layout: {functions.layout} ({how_found})")
    if functions.backward is None and not update_rule:
        lines.append(f"    backward: MISSING ({functions.missing}); outputs are checked, gradients are errors "
                     "(use --forward-only if it has none by design)")
    lines += [f"    {line}" for line in describe_capabilities(functions, _case_file_values(layer))]
    lines += [f"    note: {note}" for note in functions.notes]
    return lines


def starting_mapping(discovery: Discovery) -> str:
    """TOML for the candidates that were not used, to be completed by hand."""
    blocks = []
    for rejected in discovery.rejected:
        if rejected.layer in discovery.layers:
            continue
        kind = "class" if rejected.name.startswith("class ") else "function"
        name = rejected.name.removeprefix("class ")
        block = [f"[{rejected.layer}]", f'{kind} = "{name}"']
        if kind == "class":
            block += ['# args = { out_channels = "your_argument_name" }', '# weight = "W"', '# grad_weight = "dW"',
                      '# layout = "NHWC"', '# weight_layout = "(kh, kw, C, F)"']
        else:
            block.append('# backward = "your_backward_function"')
        blocks.append("\n".join(block))
    return "\n\n".join(dict.fromkeys(blocks))


def frameworks_note(frameworks: Sequence[str]) -> list[str]:
    """What importing a framework means for a run, in a few lines (nothing when there is none)."""
    if not frameworks:
        return []
    names = ", ".join(frameworks)
    return [f"Frameworks: your code imports {names}.",
            "  refcheck checks from-scratch numpy code, so every case of this implementation fails",
            f"  (\"the implementation imported {names}\") unless you pass --allow-frameworks;",
            "  with it, the cases are compared as usual and the report says they used " + names + "."]


def inspect_text(name: str, layers: Mapping[str, LayerFunctions], discovery: Discovery, mapping_source: str = "",
                 frameworks: Sequence[str] = ()) -> str:
    """The text ``refcheck inspect`` prints; ``frameworks``: the deep-learning frameworks the code imports."""
    lines = [f"refcheck inspect: {name}"]
    if mapping_source:
        lines.append(f"mapping read from {mapping_source}")
    lines.append("")
    if frameworks:
        lines += frameworks_note(frameworks) + [""]
    if layers:
        lines.append(f"Found {len(layers)} layer(s):")
        for layer, functions in layers.items():
            lines += _layer_block(layer, functions)
            if layer in discovery.probed:
                lines.append(f"    warning: {discovery.probed[layer]} (checked anyway: its cases will show this)")
    else:
        lines.append("Found no layers.")
    if discovery.rejected:
        lines += ["", "Not used:"]
        lines += [f"  {r.name} (looks like {r.layer}): {r.reason}" for r in discovery.rejected]
    if discovery.orphans:
        lines += ["", "Incomplete:"] + [f"  {orphan}" for orphan in discovery.orphans]
    if not layers:
        shown = ", ".join(discovery.available) or "nothing"
        lines += ["", f"The code defines: {shown}"]
    mapping = starting_mapping(discovery)
    if mapping:
        lines += ["", "A starting mapping (save as refcheck.toml beside your code, or pass --map FILE):", "", mapping]
    return "\n".join(lines)
