"""Comparing the user's training run with the torch twin's (trusted side), and locating a mistake.

Every tensor of every step becomes a row, judged by refcheck's tolerance rule against the float64
twin, with torch's own error at the dtype (the twin run at that dtype) setting the noise floor;
each side follows its own trajectory, so the rule also bounds how far a correct run may drift.
Then :func:`locate` reads the rows of one run: the first layer, walking forward, whose output
disagrees while its input agrees; else the first, walking back from the loss, whose gradient
disagrees while the gradient it receives agrees; else the parameter gradients (a CS231n-style
model shows no intermediates), with the regularisation term recognised; else the update rule.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..compare import compare_tensor
from ..execution.judge import framework_reason
from .model_file import NetworkModel

__all__ = ["expected_tensors", "locate", "network_records", "regularisation_note", "update_rule_note"]

_ERRORS = ("max_abs_error", "max_rel_error", "error_eps", "torch_error_eps", "tolerance_eps", "mismatched", "total")


def expected_tensors(model: NetworkModel, style: str) -> list[tuple[str, str, str]]:
    """(tensor, layer label, where to find it) for one step, in the order rows are written."""
    rows = [("loss", model.loss_layer.label, "loss")]
    if style == "layers":
        rows += [(f"L{e.index}.output", e.label, f"outputs.{e.index}") for e in model.layers[:-1]]
        rows += [(f"L{e.index}.grad_input", e.label, f"grad_inputs.{e.index}") for e in reversed(model.layers)]
    rows += [(f"grad_{name}", entry.label, f"grads.{name}") for name, (entry, _) in model.parameters.items()]
    rows += [(f"updated_{name}", entry.label, f"updated.{name}") for name, (entry, _) in model.parameters.items()]
    return rows


def _pick(step: Mapping[str, Any] | None, where: str) -> Any:
    if step is None:
        return None
    key, _, item = where.partition(".")
    value = step.get(key)
    if not item:
        return value
    if isinstance(value, list):
        return value[int(item)]
    return value.get(item) if isinstance(value, Mapping) else None


def network_records(model: NetworkModel, dtype: str, raw: Mapping[str, Any], twin: Mapping[str, Any] | None,
                    twin_error: str = "", allow_frameworks: bool = False) -> list[dict[str, Any]]:
    """One record per (step, tensor) of a model at one dtype; a model that uses a framework fails
    (unless allowed), as in ``refcheck run``."""
    frameworks = list(raw.get("frameworks", []))
    style = raw.get("style") or ("class" if model.model_class else "layers")
    base = {"model": model.name, "dtype": dtype, "implementation": raw.get("origin", ""),
            "update_rule": raw.get("rule_origin", "")}
    records = []
    done = raw.get("steps", [])
    for step in range(model.steps):
        ran = step < len(done)
        for tensor, label, where in expected_tensors(model, style):
            record = {**base, "step": step, "tensor": tensor, "layer": label, "status": "", "reason": ""}
            records.append(record)
            if frameworks and not allow_frameworks:
                record.update(status="failed", reason=framework_reason(frameworks))
                continue
            if raw.get("status") == "skipped":
                record.update(status="skipped", reason=raw.get("reason", ""))
                continue
            if twin is None:
                record.update(status="error", reason=f"torch twin: {twin_error}")
                continue
            if not ran:
                record.update(status="error", reason=raw.get("reason") or "the run stopped before this step")
                continue
            reference = _pick(twin["reference"][step], where)
            at_dtype = _pick(twin["at_dtype"][step], where)
            result = _pick(done[step], where)
            if tensor == "loss" and isinstance(result, np.ndarray) and result.shape == (1,):
                result = result.reshape(())
            outcome = compare_tensor(tensor, result, reference, at_dtype, dtype)
            record.update(status="passed" if outcome.passed else "failed", reason=outcome.reason,
                          **{k: getattr(outcome, k) for k in _ERRORS})
    return records


def regularisation_note(model: NetworkModel, name: str, result: Any, reference: np.ndarray | None,
                        param: np.ndarray) -> str:
    """'regularisation missing from grad_W2' when the difference is -reg * W (or counted twice)."""
    if not model.reg or name not in model.regularised or reference is None or not isinstance(result, np.ndarray):
        return ""
    if result.shape != reference.shape:
        return ""
    term = 2 * model.reg_scale * model.reg * np.asarray(param, dtype=np.float64)
    difference = result.astype(np.float64) - reference
    scale = max(float(np.abs(term).max()), 1e-300)
    for factor, what in ((-1.0, "missing from"), (1.0, "counted twice in")):
        if float(np.abs(difference - factor * term).max()) <= 1e-3 * scale:
            return (f"the regularisation term {2 * model.reg_scale:g} * reg * {name} is {what} grad_{name} "
                    f"(its difference from torch's is {factor:+g} * {2 * model.reg_scale:g} * reg * {name})")
    return ""


def update_rule_note(model: NetworkModel, param: np.ndarray, grad: np.ndarray, result: Any) -> str:
    """At the first step, Adam's classic slips recognised from the user's parameters after it."""
    if model.rule not in ("adam", "adamw") or not isinstance(result, np.ndarray) or model.hyper.get("amsgrad"):
        return ""
    lr, eps = float(model.hyper.get("lr", 1e-3)), float(model.hyper.get("eps", 1e-8))
    beta1, beta2 = model.hyper.get("betas", (0.9, 0.999))
    p, g = np.asarray(param, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    m, v = (1 - beta1) * g, (1 - beta2) * g * g
    candidates = {
        "without bias correction (m / (sqrt(v) + eps) instead of m_hat / (sqrt(v_hat) + eps))":
            p - lr * m / (np.sqrt(v) + eps),
        "with eps inside the square root": p - lr * (m / (1 - beta1)) / np.sqrt(v / (1 - beta2) + eps),
    }
    if model.hyper.get("weight_decay"):
        return ""
    for what, expected in candidates.items():
        if result.shape == expected.shape and np.allclose(result, expected, rtol=1e-4, atol=1e-12):
            return f"its step matches Adam {what}"
    return ""


def _failed(rows: Mapping[str, dict[str, Any]], tensor: str) -> bool:
    row = rows.get(tensor)
    return row is not None and row["status"] in ("failed", "error")


def locate(model: NetworkModel, records: list[dict[str, Any]], style: str, rule_origin: str,
           start: Mapping[str, np.ndarray] | None = None, raw_steps: list[Any] | None = None,
           twin_steps: list[Any] | None = None) -> str:
    """One line naming where the run first goes wrong ('' when every row passed)."""
    bad = [r for r in records if r["status"] in ("failed", "error")]
    if not bad:
        return ""
    step = min(r["step"] for r in bad)
    rows = {r["tensor"]: r for r in records if r["step"] == step}
    if all(r["status"] == "error" for r in rows.values()):
        return f"step {step}: {next(iter(rows.values()))['reason']}"
    where = f"step {step}: "
    last = len(model.layers) - 1
    if style == "layers":
        for entry in model.layers:
            output = "loss" if entry.index == last else f"L{entry.index}.output"
            upstream_ok = entry.index == 0 or not _failed(rows, f"L{entry.index - 1}.output")
            if upstream_ok and _failed(rows, output):
                return (f"{where}{entry.label} forward: its output disagrees with torch's while its input agrees")
        for entry in reversed(model.layers):
            received_ok = entry.index == last or not _failed(rows, f"L{entry.index + 1}.grad_input")
            wrong = [t for t in [f"L{entry.index}.grad_input", *(f"grad_{n}" for n in entry.names.values())]
                     if _failed(rows, t)]
            if received_ok and wrong:
                return (f"{where}{entry.label} backward: walking back from the loss, the first layer whose gradient "
                        f"disagrees ({', '.join(wrong)}) while the gradient it receives agrees")
    else:
        if _failed(rows, "loss"):
            return f"{where}the loss disagrees with torch's ({rows['loss']['reason']})"
        wrong = [name for name in model.parameters if _failed(rows, f"grad_{name}")]
        if wrong:
            notes = []
            for name in wrong:
                note = ""
                if raw_steps and twin_steps and start is not None and step < len(raw_steps):
                    params = start if step == 0 else raw_steps[step - 1]["updated"]
                    note = regularisation_note(model, name, raw_steps[step]["grads"].get(name),
                                               twin_steps[step]["grads"][name], params[name])
                entry, tensor = model.parameters[name]
                notes.append(f"grad_{name} ({entry.label} {tensor})" + (f": {note}" if note else ""))
            return f"{where}parameter gradients disagree while the loss agrees: " + "; ".join(notes)
    updated = [name for name in model.parameters if _failed(rows, f"updated_{name}")]
    if updated:
        note = ""
        if step == 0 and raw_steps and start is not None:
            name = updated[0]
            note = update_rule_note(model, start[name], raw_steps[0]["grads"].get(name),
                                    raw_steps[0].get("updated", {}).get(name))
        return (f"{where}the gradients agree but the parameters after the step disagree "
                f"({', '.join(updated)}): the update rule ({rule_origin}) differs from "
                f"{model.update.split(' as ')[-1] if model.rule else 'w - lr * dw'}" + (f"; {note}" if note else ""))
    return f"{where}{bad[0]['tensor']}: {bad[0]['reason']}"
