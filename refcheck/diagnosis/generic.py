"""Mistakes that do not depend on the layer: precision, activation layout, mutated inputs, and
gradients of a batch that were not summed over it (shared by conv2d and linear)."""
from __future__ import annotations

import numpy as np

from ..compare import relative_error_eps, tolerance_eps
from .context import Context

__all__ = ["averaged_over_batch", "bias_not_summed", "float32_arithmetic", "mutation_message", "nhwc_layout",
           "state_between_calls"]

# A float64 result computed in float32 carries a rounding error of about half a float32 eps
# somewhere; smaller disagreements come from formula details, not from precision.
_MIN_FLOAT32_EPS = 0.5
# ... and errors of the order of torch's own float32 result on the case: many times more (or more
# than this many eps where torch's is tiny) is a formula mistake that happens to be small.
_MAX_OVER_TORCH32 = 4.0
_MAX_FLOAT32_EPS = 16.0
# ... and at most this relative error: beyond it the result is wrong, not imprecise, even where
# torch's own float32 result is as far off (ties broken differently after rounding, near_max).
_MAX_RELATIVE_ERROR = 1e-3
# Where torch's own float32 result is this many float32 eps off (an ill-conditioned case: nearly
# constant inputs), the float32 tolerance is wide enough to hold formula mistakes too: only a
# result made of float32 numbers is then taken for float32 arithmetic.
_ILL_CONDITIONED_EPS = 8.0


def float32_arithmetic(context: Context, tensor: str) -> str | None:
    """A float64 case whose result is exactly as accurate as float32 arithmetic would make it."""
    if context.dtype != "float64":
        return None
    result, reference = context.result(tensor), context.reference(tensor)
    if result is None or reference is None or result.shape != reference.shape:
        return None
    wide = result.astype(np.float64)
    error32 = relative_error_eps(wide, reference, "float32")
    # torch's own float32 error on this case sets the float32 tolerance, as for a float32 case.
    torch32 = context.torch("float32", dtype="float32").get(tensor)
    torch_eps = 0.0 if torch32 is None else relative_error_eps(torch32, reference, "float32")
    representable = bool(np.all(wide.astype(np.float32).astype(np.float64) == wide))
    imprecise = error32 * float(np.finfo(np.float32).eps) <= _MAX_RELATIVE_ERROR
    near_torch32 = _MIN_FLOAT32_EPS <= error32 <= max(_MAX_FLOAT32_EPS, _MAX_OVER_TORCH32 * torch_eps)
    float32_like = representable or (near_torch32 and torch_eps <= _ILL_CONDITIONED_EPS)
    if imprecise and error32 <= tolerance_eps("float32", torch_eps, context.overrides) and float32_like:
        return (f"float32 arithmetic: {tensor} is only float32-accurate ({error32:.2g} float32 eps); "
                "compute float64 inputs in float64 (look for astype(np.float32), float32 buffers or constants)")
    return None


def state_between_calls(context: Context, tensor: str) -> str | None:
    """A gradient that is right when the backward follows its own forward directly: in the sweep
    the forward was called once more in between (on other inputs, as a network with two such layers
    does), so the backward reads what the last forward left in module or class state, not its cache."""
    if not tensor.startswith("grad_") or not context.run.interleaved:
        return None
    again = context.rerun("own_forward_just_before", {}, context.dout).get(tensor)
    if again is not None and context.fixes(tensor, np.asarray(again)):
        return ("state shared between calls: the backward is right only right after its own forward; it reads "
                "what the last forward call left (a module global, a class attribute) instead of its cache, so "
                "a network with two of these layers gets wrong gradients")
    return None


def nhwc_layout(context: Context, tensor: str) -> str | None:
    """An NCHW tensor returned as NHWC, NHWC data reshaped to NCHW, or an implementation written for NHWC."""
    result, reference = context.result(tensor), context.reference(tensor)
    if result is None or reference is None or reference.ndim != 4:
        return None
    channels_last = reference.transpose(0, 2, 3, 1)
    if result.shape == channels_last.shape and context.explains(tensor, channels_last):
        return (f"NHWC instead of NCHW: {tensor} is laid out (N, H, W, C); return (N, C, H, W), "
                "e.g. with transpose(0, 3, 1, 2)")
    if result.shape == reference.shape and context.explains(
            tensor, np.ascontiguousarray(channels_last).reshape(reference.shape)):
        return (f"NHWC instead of NCHW: {tensor} holds NHWC data reshaped to (N, C, H, W); "
                "use transpose(0, 3, 1, 2), not reshape")
    if context.dout.ndim != 4:
        return None
    nhwc = {"input": np.ascontiguousarray(context.tensors["input"].transpose(0, 2, 3, 1))}
    rerun = context.rerun("nhwc_input", nhwc, np.ascontiguousarray(context.dout.transpose(0, 2, 3, 1)))
    candidate = np.asarray(rerun.get(tensor))
    if candidate.ndim == 4 and context.fixes(tensor, candidate.transpose(0, 3, 1, 2)):
        return (f"NHWC instead of NCHW: your {context.layer} treats its input as (N, H, W, C); "
                "the contract passes and expects NCHW (N, C, H, W)")
    return None


def mutation_message(mutated: list[str]) -> str:
    """The diagnosis of inputs changed in place, or of an output buffer the code reuses
    (``CaseRun.mutated`` lists what changed)."""
    inputs = [entry for entry in mutated if not entry.startswith("output buffer reused")]
    if not inputs:
        return ("output buffer reused: forward returned an array that its next call overwrote, so an earlier "
                "layer's output changes under it in a network; return a new array on every call")
    return (f"input mutated in place ({'; '.join(inputs)}): work on copies or out-of-place "
            "operations (np.maximum(x, 0), not x[x < 0] = 0); forward and backward must not change their arguments")


def _batch_rows(context: Context) -> tuple[int, str]:
    """How many samples a weight gradient sums over, and how to name them."""
    if context.layer == "conv2d":
        return context.tensors["input"].shape[0], "the batch"
    lead = context.tensors["input"].shape[:-1]
    return int(np.prod(lead, dtype=np.int64)), "the batch (every leading axis)"


def averaged_over_batch(context: Context, tensor: str) -> str | None:
    """A weight or bias gradient divided by the number of samples (torch sums over the batch)."""
    rows, what = _batch_rows(context)
    reference = context.reference(tensor)
    if rows > 1 and reference is not None and context.explains(tensor, reference / rows):
        return (f"{tensor} averaged over {what} (divided by {rows}); torch sums the gradient over {what}: "
                f"do not divide by the batch size")
    return None


def bias_not_summed(context: Context, tensor: str) -> str | None:
    """The bias gradient with the batch (or, for conv2d, the spatial) axes not summed away."""
    if tensor != "grad_bias":
        return None
    result = context.result(tensor)
    dout = context.wide("dout")
    if result is None:
        return None
    wide = result.astype(np.float64)
    if context.layer == "conv2d":
        # dout is (N, F, OH, OW): the bias gradient sums axes 0, 2 and 3.
        n, f, oh, ow = dout.shape
        forgotten = {(n, f): ((0,), "the batch"), (n, f, oh, ow): ((0, 2, 3), "the batch and the spatial axes"),
                     (f, oh, ow): ((1, 2), "the spatial axes")}
        rule = "grad_bias = dout.sum(axis=(0, 2, 3))"
        first = dout[0].sum(axis=(1, 2))
    else:
        f = dout.shape[-1]
        lead = dout.shape[:-1]
        forgotten = {dout.shape: (tuple(range(len(lead))), "the batch")}
        if len(lead) > 1:
            forgotten[lead[1:] + (f,)] = (tuple(range(len(lead) - 1)), "every leading axis but the first")
        rule = "grad_bias = dout summed over every axis but the last"
        first = dout.reshape(-1, f)[0]
    if result.shape in forgotten:
        axes, what = forgotten[result.shape]
        if context.fixes(tensor, wide.sum(axis=axes)):
            return f"bias gradient not summed over {what}: {rule}"
    averaged = averaged_over_batch(context, tensor)
    if averaged:
        return averaged
    if dout.shape[0] > 1 and context.explains(tensor, first):
        return f"bias gradient taken from the first sample only; sum over the batch: {rule}"
    return None
