"""QAT policies: when fake quantization starts and how many bits each layer's weights get.

A policy is data, in the format of ai8x-training's `policies/qat_policy_*.yaml`:

```yaml
start_epoch: 10
weight_bits: 2
shift_quantile: 0.985
overrides:
  conv1:
    weight_bits: 8
```

Keys this workbench does not use (e.g. the vendor's `outlier_removal_z_score`) are ignored
with a logged warning, so vendor files load unchanged.
"""

import dataclasses
import importlib.resources
import logging
import os
import types
from pathlib import Path

import yaml

from ai8x_nb.errors import QuantizationError

__all__ = ["QATPolicy", "load_policy", "PACKAGED_POLICIES", "WEIGHT_BITS"]

logger = logging.getLogger(__name__)

WEIGHT_BITS = (8, 4, 2, 1)
PACKAGED_POLICIES = ("default",)
"""Policy names that `load_policy` finds inside the package (`ai8x_nb/policies/<name>.yaml`)."""

_KEYS = ("start_epoch", "weight_bits", "shift_quantile", "overrides")
_OVERRIDE_KEYS = ("weight_bits",)


def _check_bits(value, where):
    if isinstance(value, str) and value.strip().lower() in ("binary", "bin"):
        return "binary"  # +-1 weights (MAX78002); the layer checks its device
    if isinstance(value, bool) or value not in WEIGHT_BITS:
        raise QuantizationError(
            f"QAT policy {where} is {value!r}; the device supports 8, 4, 2 or 1-bit weights "
            f"(and 'binary' +-1 weights on the MAX78002). Use weight_bits: 8 unless the weight "
            f"memory is too small.")
    return int(value)


def _freeze_overrides(overrides):
    if overrides is None:
        return types.MappingProxyType({})
    if not isinstance(overrides, dict) and not isinstance(overrides, types.MappingProxyType):
        raise QuantizationError(
            f"QAT policy 'overrides' must map layer names to settings, e.g. "
            f"{{'conv1': {{'weight_bits': 8}}}}; got {overrides!r}.")
    frozen = {}
    for name, settings in overrides.items():
        if not isinstance(settings, (dict, types.MappingProxyType)):
            raise QuantizationError(
                f"QAT policy override for layer '{name}' must be a mapping like "
                f"{{'weight_bits': 8}}; got {settings!r}.")
        unknown = sorted(set(settings) - set(_OVERRIDE_KEYS))
        if unknown:
            logger.warning("QAT policy: ignoring unknown override key(s) %s of layer '%s' "
                           "(only weight_bits is used).", ", ".join(map(str, unknown)), name)
        entry = {}
        if "weight_bits" in settings:
            entry["weight_bits"] = _check_bits(
                settings["weight_bits"], f"override weight_bits of layer '{name}'")
        frozen[str(name)] = types.MappingProxyType(entry)
    return types.MappingProxyType(frozen)


@dataclasses.dataclass(frozen=True)
class QATPolicy:
    """When to switch to fake quantization, and with how many weight bits.

    Args:
        start_epoch: 0-based epoch at which QAT starts (BatchNorm folded, optimizer state
            reset, fake quantization on). >= 0.
        weight_bits: default weight bits of every layer: 8, 4, 2 or 1.
        overrides: `{layer_name: {"weight_bits": n}}` per-layer exceptions.
        shift_quantile: quantile of |W, b| that sets output_shift, in (0, 1].

    Raises:
        QuantizationError: for a value out of range.

    Example:

    >>> policy = QATPolicy(start_epoch=5, weight_bits=8, overrides={"conv1": {"weight_bits": 4}})
    >>> policy.bits_for("conv1"), policy.bits_for("conv2")
    (4, 8)
    """

    start_epoch: int = 10
    weight_bits: int = 8
    overrides: types.MappingProxyType = dataclasses.field(default_factory=dict)
    shift_quantile: float = 1.0

    def __post_init__(self):
        start = self.start_epoch
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            if isinstance(start, float) and start.is_integer() and start >= 0:
                start = int(start)
            else:
                raise QuantizationError(
                    f"QAT policy start_epoch is {self.start_epoch!r}; it must be an integer >= 0 "
                    f"(the 0-based epoch at which fake quantization starts).")
        object.__setattr__(self, "start_epoch", start)
        object.__setattr__(self, "weight_bits", _check_bits(self.weight_bits, "weight_bits"))
        try:
            quantile = float(self.shift_quantile)
        except (TypeError, ValueError):
            quantile = float("nan")
        if not 0.0 < quantile <= 1.0:
            raise QuantizationError(
                f"QAT policy shift_quantile is {self.shift_quantile!r}; it must be in (0, 1]. "
                f"Use 1.0 (the maximum of |W, b|) or e.g. 0.995.")
        object.__setattr__(self, "shift_quantile", quantile)
        object.__setattr__(self, "overrides", _freeze_overrides(self.overrides))

    def bits_for(self, layer_name):
        """Weight bits of the layer named `layer_name` (its override, else `weight_bits`)."""
        return self.overrides.get(layer_name, {}).get("weight_bits", self.weight_bits)

    def check_layer_names(self, names):
        """Raise if an override names a layer that is not in `names`.

        Args:
            names: the names of the model's hardware layers that have weights.

        Raises:
            QuantizationError: naming the unknown layer(s) and listing the valid names.
        """
        names = list(names)
        unknown = [name for name in self.overrides if name not in names]
        if unknown:
            raise QuantizationError(
                f"QAT policy overrides name layer(s) {', '.join(repr(n) for n in unknown)} that the "
                f"model does not have (or that have no weights). Layers with weights: "
                f"{', '.join(names) or '(none)'}. Fix the names under 'overrides:'.")

    def to_dict(self):
        """A plain dict in the vendor's YAML layout (overrides only when present)."""
        data = {"start_epoch": self.start_epoch, "weight_bits": self.weight_bits,
                "shift_quantile": self.shift_quantile}
        if self.overrides:
            data["overrides"] = {name: dict(entry) for name, entry in self.overrides.items()}
        return data

    def to_yaml(self, path=None):
        """Return the policy as YAML text, and write it to `path` when given."""
        text = "---\n" + yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data, source="dict"):
        """Build a policy from a dict in the vendor's layout; unknown keys are logged and ignored.

        Raises:
            QuantizationError: when `data` is not a mapping or a value is invalid.
        """
        if not isinstance(data, dict):
            raise QuantizationError(
                f"QAT policy from {source} must be a mapping with start_epoch / weight_bits / "
                f"shift_quantile / overrides; got {type(data).__name__}: {data!r}.")
        unknown = sorted(str(key) for key in data if key not in _KEYS)
        if unknown and not any(key in data for key in _KEYS):
            raise QuantizationError(
                f"QAT policy from {source} has only key(s) {', '.join(unknown)}, none of which "
                f"ai8x-nb uses; expected {', '.join(_KEYS)} (check the spelling).")
        if unknown:
            logger.warning("QAT policy from %s: ignoring key(s) %s, which ai8x-nb does not use.",
                           source, ", ".join(unknown))
        return cls(**{key: data[key] for key in _KEYS if key in data and data[key] is not None})


def _read_yaml(path, source):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise QuantizationError(f"Cannot read QAT policy file '{path}': {err}. Pass a YAML "
                                f"text file (UTF-8) such as policies/qat_policy.yaml.") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise QuantizationError(f"QAT policy file '{path}' is not valid YAML: {err}") from err
    if data is None:
        raise QuantizationError(
            f"QAT policy file '{path}' is empty; it needs at least start_epoch and weight_bits.")
    return QATPolicy.from_dict(data, source=source)


def load_policy(policy):
    """Return a `QATPolicy` from a name, a YAML file, a dict or a policy.

    Args:
        policy: "default" (the packaged `ai8x_nb/policies/default.yaml`), a path to a YAML
            file in ai8x-training's policy format, a dict with the same keys, a `QATPolicy`
            (returned as is), or None (no QAT; returns None).

    Returns:
        A `QATPolicy`, or None for None.

    Raises:
        QuantizationError: for an unknown name, an unreadable file or invalid values.

    Example:

    >>> load_policy("default").weight_bits
    8
    >>> load_policy({"start_epoch": 3, "weight_bits": 4}).start_epoch
    3
    """
    if policy is None or isinstance(policy, QATPolicy):
        return policy
    if isinstance(policy, dict):
        return QATPolicy.from_dict(policy)
    if isinstance(policy, (str, os.PathLike)):
        text = os.fspath(policy)
        if text in PACKAGED_POLICIES:
            resource = importlib.resources.files("ai8x_nb") / "policies" / f"{text}.yaml"
            with importlib.resources.as_file(resource) as path:
                return _read_yaml(path, source=f"packaged policy '{text}'")
        if Path(text).is_file():
            return _read_yaml(text, source=f"'{text}'")
        raise QuantizationError(
            f"QAT policy {text!r} is neither a packaged policy ({', '.join(PACKAGED_POLICIES)}) "
            f"nor an existing YAML file. Pass 'default', a path to a policy YAML, or a dict.")
    raise QuantizationError(
        f"QAT policy must be a name, a path, a dict or a QATPolicy; got {type(policy).__name__}.")
