"""A multi-worker cluster: `TF_CONFIG` checked, and where each worker writes its run.

`TF_CONFIG` is TensorFlow's description of a cluster (`tf.distribute.MultiWorkerMirroredStrategy`
reads it): the workers' `host:port` addresses and this process's place among them. Worker 0
(or the "chief" task) writes the run folder; the other workers train the same steps into a
scratch copy.

Example:

>>> parse_tf_config('{"cluster": {"worker": ["a:1", "b:1"]}, '
...                 '"task": {"type": "worker", "index": 0}}')["chief"]
True
"""

import json
import logging
import os
import shutil
import tempfile

from ai8x_nb.errors import TrainingError

__all__ = ["TF_CONFIG", "DistributeError", "parse_tf_config", "worker_run"]

logger = logging.getLogger(__name__)

TF_CONFIG = "TF_CONFIG"
"""Environment variable describing a multi-worker cluster (TensorFlow's format)."""

_TASK_TYPES = ("worker", "chief")


class DistributeError(TrainingError):
    """A `distribute` setting that cannot be used here (value, backend, devices, cluster)."""


def parse_tf_config(text):
    """Parse and check a `TF_CONFIG` value for multi-worker training.

    Args:
        text: the JSON text, e.g. `{"cluster": {"worker": ["host1:12345", "host2:12345"]},
            "task": {"type": "worker", "index": 0}}`.

    Returns:
        A dict `{"workers": [...], "task_type": str, "task_index": int, "chief": bool,
        "num_workers": int}`; `chief` is True for the "chief" task, or for worker 0 when the
        cluster has no chief.

    Raises:
        DistributeError: missing, not JSON, or not a cluster this package trains on, naming
            the field and the fix.

    Example:

    >>> parse_tf_config('{"cluster": {"worker": ["a:1", "b:1"]}, '
    ...                 '"task": {"type": "worker", "index": 1}}')["chief"]
    False
    """
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not text or not str(text).strip():
        raise DistributeError(
            f"distribute='multiworker' needs the {TF_CONFIG} environment variable, which is "
            f"not set: it names the cluster's workers and this process's place among them. "
            f"Set it on every machine, e.g. {TF_CONFIG}='{example}' (index 0 on the first, 1 "
            f"on the second), or use distribute='mirrored' for the devices of one machine.")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise DistributeError(f"{TF_CONFIG} is not valid JSON ({err}); expected e.g. "
                              f"{example}.") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise DistributeError(f"{TF_CONFIG} has no 'cluster' mapping; expected e.g. {example}.")
    unknown = sorted(set(cluster) - set(_TASK_TYPES))
    if unknown:
        raise DistributeError(
            f"{TF_CONFIG} cluster has task type(s) {', '.join(map(repr, unknown))}; "
            f"MultiWorkerMirroredStrategy trains with 'worker' (and an optional 'chief') "
            f"tasks only. Remove them (parameter servers and evaluators are not used here).")
    hosts = {}
    for kind in _TASK_TYPES:
        entries = cluster.get(kind, [])
        if not isinstance(entries, list) or not all(
                isinstance(h, str) and h.rpartition(":")[2].isdigit() for h in entries):
            raise DistributeError(
                f"{TF_CONFIG} cluster[{kind!r}]={entries!r} is invalid: expected a list of "
                f"'host:port' strings, e.g. ['host1:12345', 'host2:12345'].")
        hosts[kind] = entries
    if len(hosts["chief"]) > 1:
        raise DistributeError(f"{TF_CONFIG} lists {len(hosts['chief'])} chiefs; a cluster has "
                              f"at most one. Make the others workers.")
    task = config.get("task")
    if not isinstance(task, dict):
        raise DistributeError(f"{TF_CONFIG} has no 'task' mapping saying which member this "
                              f"process is; add e.g. \"task\": {{\"type\": \"worker\", "
                              f"\"index\": 0}}.")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in _TASK_TYPES or not hosts[kind]:
        present = [k for k in _TASK_TYPES if hosts[k]]
        raise DistributeError(f"{TF_CONFIG} task type {kind!r} is invalid: expected one of "
                              f"{present} (the task types of its cluster).")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(hosts[kind]):
        raise DistributeError(
            f"{TF_CONFIG} task index {index!r} is invalid: the cluster has "
            f"{len(hosts[kind])} {kind}(s), so expected 0..{len(hosts[kind]) - 1}. Give each "
            f"process its own index.")
    chief = kind == "chief" or (not hosts["chief"] and index == 0)
    return {"workers": hosts["chief"] + hosts["worker"], "task_type": kind, "task_index": index,
            "chief": chief, "num_workers": len(hosts["chief"]) + len(hosts["worker"])}


def worker_run(distribution, run, out):
    """Where a process writes: the run folder, or a scratch folder on non-chief workers.

    Every worker trains the same steps and saves the same checkpoints, but only the chief's
    folder is the run. A non-chief worker resuming a run (one with a saved epoch) copies that
    run folder, which must be readable from its machine, into its scratch folder.

    Args:
        distribution: the `Distribution` or None.
        run: the `RunDir` asked for, or None.
        out: the parent folder of new runs.

    Returns:
        (run, out) to use.
    """
    from ai8x_nb.runs import RunDir

    if distribution is None or distribution.chief:
        return run, out
    scratch = tempfile.mkdtemp(prefix=f"ai8x-nb-{distribution.worker.replace(':', '')}-")
    logger.info("Worker %s writes its copy of the run into %s (the chief writes the run).",
                distribution.worker, scratch)
    if run is None:
        return None, scratch
    target = os.path.join(scratch, run.path.name)
    # Only a run with a saved epoch is resumed from the chief's folder. A folder with a
    # config.json alone may be the chief's brand-new run of this very start; either way the
    # worker starts afresh and the strategy gives it the chief's initial weights.
    if run.can_resume:
        shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(".lock", "*.tmp*"))
    return RunDir(target), scratch
