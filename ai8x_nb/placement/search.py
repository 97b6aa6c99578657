"""Find a placement that fits: greedy passes first, then a search over the masks.

`Planner` is greedy: each layer takes the mask that is best now. That fits almost every model
the tool can place; when it does not, the choice of an early layer is usually what blocked a
later one. So `plan_layers` tries, in order, and keeps the first placement that fits:

1. one greedy pass per tie-break strategy (`STRATEGIES`);
2. a lookahead search: layer by layer, try every mask of that layer with the greedy pass for
   the rest, keep the mask whose outcome is best (fewest problems, lowest kernel memory),
   within `SEARCH_SECONDS`.

When nothing fits, the problems of the first greedy pass are reported. Networks that branch
(residual `Add`s) are placed by `branches.BranchPlanner` instead. Results are cached by
the layers' demands, so `check_model` and the YAML writer, which place the same model one
after the other, search once.
"""

import dataclasses
import functools
import logging
import time

from ai8x_nb.placement.bias import place_biases
from ai8x_nb.placement.branches import is_chain, plan_branches
from ai8x_nb.placement.plan import STRATEGIES, LayerPlacement, Planner, label

__all__ = ["plan_layers", "SEARCH_SECONDS"]

logger = logging.getLogger(__name__)

SEARCH_SECONDS = 3.0
"""Time the lookahead search may take for a model that no greedy pass fits."""


def _score(planner):
    return len(planner.errors), int(planner.memory.top().max())


def _lookahead(demands, device, deadline):
    """The search of step 2; returns a `Planner` that fits, or None."""
    forced = {}
    for i in Planner(demands, device).group_starts():
        probe = Planner(demands, device, forced=forced).run()
        best = None
        for mask in probe.candidates(i):
            trial = Planner(demands, device, forced={**forced, i: mask}).run()
            if not trial.errors:
                return trial
            if best is None or _score(trial) < best[0]:
                best = (_score(trial), mask)
            if time.monotonic() > deadline:
                return None
        forced[i] = best[1]
    return None


@functools.lru_cache(maxsize=16)
def _plan(key, device):
    demands = [type_(*values) for type_, values in key]
    if not is_chain(demands):
        return plan_branches(demands, device)
    attempts = [Planner(demands, device, strategy).run() for strategy in STRATEGIES[:1]]
    for strategy in STRATEGIES[1:]:
        if not attempts[-1].errors:
            break
        attempts.append(Planner(demands, device, strategy).run())
    if attempts[-1].errors:
        found = _lookahead(demands, device, time.monotonic() + SEARCH_SECONDS)
        logger.debug("greedy placement does not fit; lookahead search %s",
                  "found one" if found else "found none")
        return found or attempts[0]
    if len(attempts) > 1:
        logger.debug("placement fits with tie-break %r", STRATEGIES[len(attempts) - 1])
    return attempts[-1]


def plan_layers(demands, device):
    """Place every layer; returns `(layers, memory, biases, problems)`.

    Args:
        demands: the `LayerDemand` list of a model.
        device: a `Device`.

    Returns:
        A list of `LayerPlacement`, the final `KernelMemory`, the `BiasPlacement` (None when
        some mask could not be chosen) and a list of `(layer index, kind, message)` problems,
        kind one of "kernels", "bias", "data", "processors" (empty when everything fits).
    """
    key = tuple((type(d), dataclasses.astuple(d)) for d in demands)
    planner = _plan(key, device)
    masks = planner.masks
    n = len(demands)
    out_masks = getattr(planner, "out_masks", None) or [
        masks[i + 1] if i + 1 < n else planner.final_mask for i in range(n)]
    placed = []
    for i, d in enumerate(demands):
        placed.append(LayerPlacement(
            index=d.index, name=d.name, op=d.op, processors=masks[i] or 0,
            output_processors=out_masks[i] or 0, passes=d.passes, count=d.count,
            out_passes=d.out_passes, data_format="CHW" if d.chw else "HWC",
            kernel_offset=planner.columns[i] if d.weighted else None,
            kernel_words=d.words, kernel_values=d.kernel_values, bias_bytes=d.bias_bytes,
            in_offset=planner.in_off[i] or 0, out_offset=planner.out_off[i] or 0,
            in_bytes=d.in_bytes, out_bytes=d.out_bytes))
    problems = list(planner.errors)
    biases = None
    if all(m is not None for m in masks):
        biases = place_biases(demands, masks, planner.final_mask, device)
        for lp, q in zip(placed, biases.quadrant):
            lp.bias_quadrant = q
        if biases.failed is not None:
            problems.append(_bias_problem(demands[biases.failed], biases, device))
    return placed, planner.memory, biases, problems


def _bias_problem(d, biases, device):
    room = ", ".join(f"quadrant {q}: {device.bias_bytes_per_quadrant - biases.used[q]}"
                     for q in biases.quadrants)
    return (d.index, "bias", (
        f"{label(d)}: its {d.bias_bytes} bias bytes do not fit into one quadrant's bias memory "
        f"({device.bias_bytes_per_quadrant} bytes each; free in the {len(biases.quadrants)} "
        f"quadrant(s) this network uses: {room}). Use use_bias=False on some layers, or more "
        f"than 16 channels somewhere so that the network uses more quadrants."))
