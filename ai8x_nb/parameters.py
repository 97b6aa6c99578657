"""The parameter table: one frozen set of rules, read by the notebooks, `train` and the CLI.

Every dataset notebook declares the parameters of `PARAMETERS` in its `parameters` cell
(`parameters_cell` writes that cell from the table) and validates them in its Setup cell
(`check_parameters`); `ai8x_nb.training.train` checks its arguments of the same names with
`check_value`, and `ai8x-nb train` takes its flags' types, metavars and help from the table
(`cli_options`) and checks their values with `check_value` too. A bad value raises one error
type, `ParameterError`, with one text wherever it was given (the CLI prints it and exits 2).
To add a parameter, add one `Parameter` row here: the generator, the checks and the CLI follow.
The module imports neither Keras nor the training code, so the CLI's `--help` stays fast.

Example:

>>> [p.name for p in PARAMETERS][:3]
['epochs', 'batch_size', 'lr']
>>> check_parameters({**defaults(), "model_spec": [{"type": "flatten"}]})["limit"]
4096
>>> check_value("schedule", " Cosine ")
'cosine'
"""

import dataclasses
import math
import numbers
import os
import types

from ai8x_nb.devices import DEFAULT_DEVICE
from ai8x_nb.errors import Ai8xNbError, ParameterError

__all__ = [
    "SCHEDULES",
    "RECIPES",
    "OPTIMIZERS",
    "DISTRIBUTE",
    "DEFAULT_SEED",
    "MAX_SEED",
    "FAST_LIMIT",
    "Parameter",
    "PARAMETERS",
    "FOLDER_PARAMETERS",
    "TRAIN_PARAMETERS",
    "NAMES",
    "ParameterError",
    "get_parameter",
    "defaults",
    "folder_table",
    "parameters_cell",
    "check_value",
    "check_int",
    "cli_options",
    "ChoiceArgument",
    "check_parameters",
]

SCHEDULES = ("seed", "cosine", "constant")
"""Learning-rate schedules by name: the seed's own (made for 100 epochs), cosine decay over the
run, constant."""

OPTIMIZERS = ("adam", "sgd")
"""Optimizers by name (any case): Adam, SGD with momentum 0.9."""

RECIPES = ("seed", "fast")
"""Training recipes by name (`ai8x_nb.training.recipes`): as the seed models were trained, or
"fast" for runs of 10-20 epochs (augmentation, cosine warm-up schedule, weight decay, label
smoothing, QAT for the last fifth of the run)."""

DISTRIBUTE = ("mirrored", "multiworker")
"""Data-parallel training (`train(distribute=...)`): the devices of this machine, or the
machines of a `TF_CONFIG` cluster; None trains on one device."""

DEFAULT_SEED = 42
"""Random seed of training runs and notebooks when none is given."""

MAX_SEED = 2**32 - 1
"""Largest seed: NumPy's generators (behind keras.utils.set_random_seed) take 32 bits."""

FAST_LIMIT = 4096
"""Samples per split a notebook keeps when `fast=True` and `limit` is None."""

QAT_DEMO_WEIGHT_BITS = 8
"""Weight bits of the notebooks' default QAT policy (quantization-aware in the last epoch)."""

_NOTEBOOK_FIX = "Edit the parameters cell, or pass -p NAME VALUE."


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One notebook parameter.

    Attributes:
        name: the variable name in the `parameters` cell (and `-p NAME` of `ai8x-nb run`).
        default: the literal value a notebook declares unless its dataset sets another
            (`qat_policy` and `model_spec` are filled in by `defaults`).
        kind: how the value is checked: "int", "rate" (a finite number > 0), "real" (a finite
            number >= 0), "choice", "bool", "folder" (path or None), "path", "qat_policy",
            "device", "model_name", "model_spec", "data_folder" or "image_size".
        expected: what a valid value is, as the error message says it.
        comment: the comment beside the value in the `parameters` cell.
        low: smallest value of an "int".
        high: largest value of an "int" (None: no limit).
        choices: the names a "choice" accepts.
        allow_none: None is accepted ("use the default").
        ignore_case: a "choice" compared in lower case, surrounding spaces ignored.
        aliases: other names a "choice" accepts, name -> the choice it means.
        fix: the last sentence of the error message: how to fix the value.
        help: the `ai8x-nb train` flag's help (None: the flag is not `train`'s).
    """

    name: str
    default: object
    kind: str
    expected: str = ""
    comment: str = ""
    low: int = None
    high: int = None
    choices: tuple = ()
    allow_none: bool = False
    ignore_case: bool = False
    aliases: tuple = ()
    fix: str = _NOTEBOOK_FIX
    help: str = None


PARAMETERS = (
    Parameter("epochs", 3, "int", low=1,
              comment='total epochs; QAT starts at qat_policy["start_epoch"] (0-based)',
              fix="Pass the total number of epochs (e.g. 10).",
              help="number of epochs (default: the seed's)"),
    Parameter("batch_size", None, "int", low=1, allow_none=True,
              comment="None: the recipe's, else this notebook's short-run value",
              fix="Pass a batch size such as 64, or None for the recipe's.",
              help="batch size (default: the recipe's, else the seed's)"),
    Parameter("lr", None, "rate", allow_none=True,
              expected="a finite learning rate > 0 (e.g. 1e-3) or None for the recipe's",
              comment="peak learning rate; None: the recipe's, else this notebook's",
              fix="Pass a learning rate such as 1e-3, or None for the recipe's.",
              help="initial learning rate (default: the recipe's, else the seed's)"),
    Parameter("schedule", None, "choice", choices=SCHEDULES, allow_none=True, ignore_case=True,
              aliases=(("auto", "seed"),),
              expected="the seed's schedule (made for 100 epochs), cosine decay over the run, "
                       "or constant",
              comment='None: the recipe\'s, else "cosine" (decay to 0 over the run); "seed": '
                      'the seed\'s (for 100 epochs)',
              fix="Pass 'cosine' for short runs, 'seed' for the seed's.",
              help="LR schedule: the seed's (default; ReduceLROnPlateau or steps, made for 100 "
                   "epochs), cosine decay to 0 over the run (best for short runs), or "
                   "constant"),
    Parameter("recipe", "seed", "choice", choices=RECIPES, ignore_case=True, allow_none=True,
              expected="'seed' (as the seed models were trained) or 'fast' (10-20 epoch runs)",
              comment='"fast": augmentation, weight decay, label smoothing, late QAT (full runs)',
              fix="Use 'fast' for short runs (10-20 epochs) or 'seed' to train as the seed "
                  "models were.",
              help="training recipe: 'seed' (default for a new run: as the seed models were "
                   "trained) or 'fast' (10-20 epoch runs: augmentation, cosine schedule with "
                   "warm-up, weight decay, label smoothing, QAT for the last fifth with "
                   "--qat-policy default); a resumed run keeps its own"),
    Parameter("optimizer", "adam", "choice", choices=OPTIMIZERS, allow_none=True,
              ignore_case=True, expected="any case; None: the model's",
              fix="Pass an optimizer name, or None for the seed model's.",
              help="Adam or SGD, any case (default: the seed's, Adam)"),
    Parameter("qat_policy", None, "qat_policy", allow_none=True,
              expected="None (float only), 'default', a policy YAML path or a dict like "
                       "{'start_epoch': 1, 'weight_bits': 8}",
              comment='or "default", a YAML path, None',
              fix="Pass 'default', a policy YAML path or a dict."),
    Parameter("device", DEFAULT_DEVICE, "device", comment='or "MAX78002"',
              fix="Pass device='MAX78000' or device='MAX78002'.",
              help="MAX78000 (default) or MAX78002"),
    Parameter("data_dir", None, "folder", allow_none=True,
              expected="a folder path (str) or None",
              comment="None: the AI8X_NB_DATA environment variable, else ./data"),
    Parameter("dataset_folder", None, "folder", allow_none=True,
              expected="a folder path (str) or None"),
    Parameter("allow_partial", False, "bool"),
    Parameter("export_dir", "export", "path", expected="a folder path such as 'export'"),
    Parameter("fast", True, "bool",
              comment=f"demo: keep only `limit` samples per split ({FAST_LIMIT} when limit is "
                      f"None)"),
    Parameter("limit", None, "int", low=1, allow_none=True,
              fix="Pass a sample count such as 1000, or None for all samples.",
              help="at most N samples per split"),
    Parameter("seed", DEFAULT_SEED, "int", low=0, high=MAX_SEED, allow_none=True,
              fix="Pass a non-negative int such as 42.", help="random seed (default 42)"),
    Parameter("distribute", None, "choice", choices=DISTRIBUTE, allow_none=True,
              ignore_case=True, expected="None: one device; 'mirrored': this machine's GPUs "
                                         "(else its CPUs); 'multiworker': the machines of "
                                         "$TF_CONFIG",
              comment='None: one device; "mirrored": all GPUs of this machine',
              fix="Pass one of these.",
              help="data-parallel training: 'mirrored' over this machine's GPUs (else its "
                   "CPUs), 'multiworker' over the machines of $TF_CONFIG (run the same "
                   "command on each); --batch_size stays the global batch. Default: one "
                   "device (a resumed run: its own)"),
    Parameter("model_name", None, "model_name", allow_none=True,
              expected="None (build model_spec) or a registry model name such as 'ressimplenet'",
              comment='None: the model of model_spec; or a registry model by name (no editor)'),
    Parameter("init_from", None, "path", allow_none=True,
              expected="None or a trained model file such as 'kws20_v3.keras' (written by "
                       "`ai8x-nb import ... --out` or by a run)",
              comment="None: train from scratch; or a trained .keras to fine-tune"),
    Parameter("model_spec", None, "model_spec"),
)
"""Every notebook parameter, in the order of the `parameters` cell."""

FOLDER_PARAMETERS = (
    Parameter("data_folder", None, "data_folder",
              expected="your folder of class sub-folders, e.g. 'shapes' holding "
                       "shapes/circle/*.png, shapes/square/*.png (README, 'Your own data')",
              comment="your folder: one sub-folder of samples per class"),
    Parameter("image_size", "64x64", "image_size",
              expected="HEIGHTxWIDTH such as '64x64' (or one int for a square)",
              comment="images are resized to HEIGHTxWIDTH"),
)
"""The parameters of the folder notebooks (images, keywords) before those of `PARAMETERS`:
`folder_table` gives their table."""

TRAIN_PARAMETERS = (
    Parameter("warmup_epochs", None, "real", allow_none=True,
              fix="Pass 0 for no warm-up, or a fraction of an epoch such as 0.3.",
              help="linear LR warm-up before the cosine decay, in epochs (default 0.3)"),
)
"""The parameters of `train` and `ai8x-nb train` that the notebooks do not declare."""

NAMES = tuple(p.name for p in PARAMETERS)
"""The parameter names, in table order."""

_BY_NAME = types.MappingProxyType({p.name: p for p in PARAMETERS + FOLDER_PARAMETERS
                                   + TRAIN_PARAMETERS})


def folder_table(kind):
    """The parameter table of a folder notebook: `data_folder` (and `image_size` for
    kind "images"), then `PARAMETERS`."""
    extra = FOLDER_PARAMETERS if kind == "images" else FOLDER_PARAMETERS[:1]
    return extra + PARAMETERS


def get_parameter(name):
    """The `Parameter` row called `name`.

    Raises:
        ParameterError: no such parameter.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ParameterError(
            f"There is no parameter {name!r}; the parameters are "
            f"{', '.join(NAMES + tuple(p.name for p in TRAIN_PARAMETERS))}.") from None


def defaults(*, table=PARAMETERS, **values):
    """The values of a `parameters` cell: the table's defaults, overridden by `values`.

    Unless given, `qat_policy` makes the last epoch quantization-aware
    (`{"start_epoch": epochs - 1, "weight_bits": 8}`).

    Args:
        table: the notebook's parameter table (`PARAMETERS`, or `folder_table(kind)`).
        **values: parameter name -> value (e.g. a dataset's `batch_size` and `model_spec`).

    Returns:
        A dict in table order.

    Raises:
        ParameterError: a name that is not a parameter.
    """
    for name in values:
        get_parameter(name)
    result = {p.name: values.get(p.name, p.default) for p in table}
    if "qat_policy" not in values:
        result["qat_policy"] = {"start_epoch": result["epochs"] - 1,
                                "weight_bits": QAT_DEMO_WEIGHT_BITS}
    return result


def parameters_cell(values, comments=None, *, table=PARAMETERS):
    """The source of a notebook's literal-only `parameters` cell.

    Args:
        values: every parameter's value (see `defaults`); `model_spec` is written one layer
            per line.
        comments: parameter name -> comment replacing the table's.
        table: the notebook's parameter table (`PARAMETERS`, or `folder_table(kind)`).

    Returns:
        Python source, one assignment per parameter in table order.
    """
    from ai8x_nb.spec import python_literal, spec_to_python

    comments = comments or {}
    missing = [p.name for p in table if p.name not in values]
    if missing:
        raise ParameterError(f"parameters_cell needs a value for {', '.join(missing)}.")
    lines = []
    for p in table:
        if p.kind == "model_spec":
            lines.append(spec_to_python(values[p.name], variable=p.name))
            continue
        comment = comments.get(p.name, p.comment)
        line = f"{p.name} = {python_literal(values[p.name])}"
        lines.append(f"{line}  # {comment}" if comment else line)
    return "\n".join(lines)


# ------------------------------------------------------------------ checks
def _fail(p, value, expected, fix=None):
    raise ParameterError(f"{p.name}={value!r} is invalid: expected {expected}. "
                         f"{p.fix if fix is None else fix}")


def _check_int(p, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < p.low or (
            p.high is not None and value > p.high):
        high = f" and <= {p.high}" if p.high is not None else ""
        _fail(p, value, f"an int >= {p.low}{high}" + (" or None" if p.allow_none else ""))
    return int(value)


def _number(p, value, positive):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        _fail(p, value, p.expected or ("a finite number " + ("> 0" if positive else ">= 0")
                                        + (" or None" if p.allow_none else "")))
    return value


def _check_rate(p, value):
    return _number(p, value, positive=True)


def _check_real(p, value):
    return _number(p, value, positive=False)


def _check_choice(p, value):
    key = value.strip().lower() if p.ignore_case and isinstance(value, str) else value
    key = dict(p.aliases).get(key, key)
    if key not in p.choices:
        none = " or None" if p.allow_none else ""
        _fail(p, value, f"one of {', '.join(map(repr, p.choices))}{none}: {p.expected}")
    return key


def _check_bool(p, value):
    if not isinstance(value, bool):
        _fail(p, value, "True or False")
    return value


def _check_folder(p, value):
    if not isinstance(value, (str, os.PathLike)):
        _fail(p, value, p.expected)
    return str(value)


def _check_data_folder(p, value):
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        _fail(p, value, p.expected)
    path = os.path.abspath(os.path.expanduser(os.fspath(value)))
    if not os.path.isdir(path):
        _fail(p, value, p.expected, fix=f"{path} is not a folder: pass -p data_folder PATH, "
                                        f"or edit the parameters cell.")
    return path


def _check_image_size(p, value):
    parts = str(value).lower().replace(" ", "").split("x")
    if isinstance(value, bool) or not all(v.isdigit() and int(v) >= 1 for v in parts) \
            or len(parts) > 2:
        _fail(p, value, p.expected)
    h, w = (int(parts[0]), int(parts[-1]))
    return (h, w)


def _check_path(p, value):
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        _fail(p, value, p.expected)
    return value


def _check_qat_policy(p, value):
    if not isinstance(value, (str, dict)):
        _fail(p, value, p.expected)
    if isinstance(value, dict) and "start_epoch" in value:
        start = value["start_epoch"]
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            _fail(p, value, "start_epoch as an int >= 0")
    return value


def _check_device(p, value):
    from ai8x_nb.devices import get_device

    try:
        return get_device(value).name
    except Ai8xNbError as err:
        raise ParameterError(f"{p.name}={value!r} is invalid: {err}") from err


def _check_model_name(p, value):
    from ai8x_nb.models import UnknownModelError, get_info

    if not isinstance(value, str):
        _fail(p, value, p.expected)
    try:
        return get_info(value).name
    except UnknownModelError as err:
        raise ParameterError(f"{p.name}={value!r}: {err}") from err


def _check_model_spec(p, value):
    from ai8x_nb import spec as specs

    try:
        return specs.resolve_spec(value)
    except specs.SpecError as err:
        raise ParameterError(f"{p.name}: {err}") from err


_CHECKS = types.MappingProxyType({
    "int": _check_int, "rate": _check_rate, "real": _check_real, "choice": _check_choice,
    "bool": _check_bool, "folder": _check_folder, "path": _check_path,
    "qat_policy": _check_qat_policy, "device": _check_device, "model_name": _check_model_name,
    "model_spec": _check_model_spec, "data_folder": _check_data_folder,
    "image_size": _check_image_size,
})


def check_value(name, value):
    """Check one parameter's value against its row; return it normalised.

    Names of a "choice" come back lower-cased (aliases resolved), a device by its canonical
    name. None passes where the row allows it ("use the default").

    Args:
        name: the parameter's name (a row of `PARAMETERS`, `FOLDER_PARAMETERS` or
            `TRAIN_PARAMETERS`).
        value: the value given (in a notebook, to `train`, or parsed from the command line).

    Raises:
        ParameterError: the value does not fit, with the parameter, the value, what is
            expected and the fix.

    Example:

    >>> check_value("epochs", 0)
    Traceback (most recent call last):
    ...
    ai8x_nb.errors.ParameterError: epochs=0 is invalid: expected an int >= 1. Pass the total ...
    """
    p = get_parameter(name)
    if value is None and p.allow_none:
        return None
    return _CHECKS[p.kind](p, value)


def check_int(name, value, low=1, fix=""):
    """Check a whole number that is no parameter of the table (e.g. a CLI flag's index).

    Args:
        name: the name the message gives it (e.g. "--save-sample").
        value: None (not given: passes) or the value.
        low: the smallest accepted value.
        fix: the message's last sentence.

    Raises:
        ParameterError: not an int >= `low`.
    """
    if value is None:
        return None
    return _check_int(Parameter(name, None, "int", low=low,
                                fix=fix or f"Pass an int >= {low}, or omit it."), value)


def _check_row(p, value):
    """`check_value` with a `Parameter` row of the caller's."""
    if value is None and p.allow_none:
        return None
    return _CHECKS[p.kind](p, value)


_CLI_TYPES = types.MappingProxyType({"int": int, "rate": float, "real": float})


@dataclasses.dataclass(frozen=True)
class ChoiceArgument:
    """The `argparse` type of a choice's flag: a known name in its canonical spelling (any
    case, aliases resolved), anything else as typed, for `check_value` to refuse by name.

    Example:

    >>> ChoiceArgument("optimizer")("Adam"), ChoiceArgument("optimizer")("RMSprop")
    ('adam', 'RMSprop')
    """

    name: str

    def __call__(self, text):
        p = get_parameter(self.name)
        key = text.strip().lower() if p.ignore_case else text
        key = dict(p.aliases).get(key, key)
        return key if key in p.choices else text


def cli_options(name):
    """The `argparse` keyword arguments of a parameter's `ai8x-nb train` flag: its type, its
    metavar (a choice's names) and its help. The value is checked with `check_value` after
    parsing, so the command line reports the text the notebooks and `train` report.

    Example:

    >>> cli_options("schedule")["metavar"]
    '{seed,cosine,constant}'
    """
    p = get_parameter(name)
    options = {"type": _CLI_TYPES.get(p.kind, str), "help": p.help or p.comment}
    if p.kind == "choice":
        options["type"] = ChoiceArgument(name)
        options["metavar"] = "{" + ",".join(p.choices) + "}"
    return options


def check_parameters(params, *, fast_limit=FAST_LIMIT):
    """Validate a dataset notebook's parameters and derive the values it uses.

    Args:
        params: dict with every name of `NAMES` (the notebook passes its parameter variables).
        fast_limit: samples per split kept when `fast` is on and `limit` is None.

    Returns:
        A dict of derived values: `limit` (None = all data), `data_dir` (None: the
        datasets' own default, `AI8X_NB_DATA`), `device` (canonical name), `qat_policy`
        (dict, "default", a path, or None for float only), `model_name` (a registry name
        in its canonical spelling, or None), `init_from` (a trained model file to fine-tune,
        or None), `model_spec` (canonical; a
        `model_spec` given as a `.spec.json` path is read from that file); for a folder
        notebook (`params` holds `data_folder`) also `data_folder` (absolute) and
        `image_size` (`(height, width)`, images only).

    Raises:
        ParameterError: the first bad parameter, by name, with the expected value.

    Example:

    >>> check_parameters({**defaults(epochs=0), "model_spec": []})
    Traceback (most recent call last):
    ...
    ai8x_nb.errors.ParameterError: epochs=0 is invalid: ...
    """
    missing = [name for name in NAMES if name not in params]
    if missing:
        raise ParameterError(f"Notebook parameters missing: {', '.join(missing)}.")
    checked = {}
    for p in tuple(q for q in FOLDER_PARAMETERS if q.name in params) + PARAMETERS:
        checked[p.name] = _check_row(p, params[p.name])
    limit = checked["limit"]
    if limit is None and checked["fast"]:
        limit = fast_limit
    return {"limit": limit, "data_dir": checked["data_dir"], "device": checked["device"],
            "qat_policy": checked["qat_policy"], "model_name": checked["model_name"],
            "init_from": checked["init_from"], "model_spec": checked["model_spec"],
            **{p.name: checked[p.name] for p in FOLDER_PARAMETERS if p.name in checked}}
