"""An editable model spec checked against a device: the layer editor without its widgets.

`SpecTable` holds the rows of a spec and, after every edit, each row's output shape and
parameters or its error (`ai8x_nb.spec.validate_spec`), and, when every row is valid, the
device check of the whole model (`ai8x_nb.check.check_model`) with its memory figures. The
editor's table columns are defined here too (`COLUMNS`: "size" is filters or units, "other"
a dropout rate or a reshape target), so `ai8x_nb.widgets.LayerEditor` only binds widgets to
them. Nothing here needs ipywidgets.

Example:

>>> from ai8x_nb.models import seed_spec
>>> table = SpecTable(seed_spec("mnist"), (28, 28, 1), 10)  # doctest: +SKIP
>>> table.set_column(1, "kernel_size", 5)  # doctest: +SKIP
>>> table.results[1][1]  # doctest: +SKIP
'Model spec row 1 (conv2d): ... kernel_size=5 ...'
"""

import json
import logging
import types

from ai8x_nb import spec as specs
from ai8x_nb.devices import get_device
from ai8x_nb.parameters import DEFAULT_DEVICE

__all__ = ["SpecTable", "COLUMNS", "ENABLED", "POOL_DEFAULT"]

logger = logging.getLogger(__name__)

COLUMNS = ("type", "size", "kernel_size", "padding", "pooling", "pool_size", "pool_strides",
           "activation", "wide", "use_bias", "other")
"""The editor's columns, in table order."""

_CONV_COLUMNS = frozenset({"size", "kernel_size", "padding", "pooling", "pool_size",
                           "pool_strides", "activation", "wide", "use_bias"})
_POOL_COLUMNS = frozenset({"pool_size", "pool_strides"})
ENABLED = types.MappingProxyType({
    "conv2d": _CONV_COLUMNS, "conv1d": _CONV_COLUMNS, "convtranspose2d": _CONV_COLUMNS,
    "dense": frozenset({"size", "activation", "wide", "use_bias"}),
    "maxpool": _POOL_COLUMNS, "avgpool": _POOL_COLUMNS,
    "flatten": frozenset(), "dropout": frozenset({"other"}), "reshape": frozenset({"other"}),
})
"""The columns each layer type uses (the others are disabled in its row)."""

POOL_DEFAULT = 2
"""Pool size and stride a row gets when pooling is switched on."""


def _first(value, default):
    if value is None:
        return default
    return int(value[0] if isinstance(value, (list, tuple)) else value)


class SpecTable:
    """A model spec being edited, validated row by row against a device.

    Args:
        spec: the starting spec (list of row dicts).
        input_shape: one sample's shape without batch, e.g. `dataset.input_shape`.
        num_classes: the number of classes the last layer must output (None: no check).
        device: "MAX78000" or "MAX78002".

    Attributes:
        input_shape, num_classes: as given.
        results: one `(ok, message, output_shape, params)` per row (`validate_spec`).
        report: the `CheckReport` of the whole model, or None while a row has an error.
        check_error: the text of an unexpected `check_model` failure, or None.

    Raises:
        SpecError: a malformed starting spec.
        ai8x_nb.errors.UnknownDeviceError: an unknown device.
    """

    def __init__(self, spec, input_shape, num_classes=None, device=DEFAULT_DEVICE):
        self._rows = specs.normalize_spec(spec)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self._device = get_device(device).name
        self.results = []
        self.report = None
        self.check_error = None
        self.check()

    # ------------------------------------------------------------------ state
    @property
    def spec(self):
        """The current spec: a new list of row dicts (canonical unless a row is malformed)."""
        return [dict(row) for row in self._rows]

    @property
    def device(self):
        """The device name the rows are checked against."""
        return self._device

    def __len__(self):
        return len(self._rows)

    def row(self, index):
        """A copy of row `index`."""
        return dict(self._rows[index])

    @property
    def ok(self):
        """True when every row is valid and the model check found no error."""
        return (all(r[0] for r in self.results) and self.report is not None
                and self.report.ok)

    @property
    def bad_rows(self):
        """Indices of the rows with an error."""
        return [i for i, r in enumerate(self.results) if not r[0]]

    @property
    def parameters(self):
        """Parameters of the valid rows."""
        return sum(r[3] for r in self.results)

    def row_cycles(self):
        """Per row, the accelerator cycles of its hardware layer as the synthesis tool
        estimates them (`check_model`), or None (a row that is no hardware layer of its own,
        or no device check yet)."""
        if self.report is None:
            return [None] * len(self._rows)
        cycles = {r.name: r.cycles for r in self.report.rows if r.counted}
        return [cycles.get(name) for name in specs.layer_names(self._rows)]

    def budget(self):
        """The memory figures of the device check as (label, used, limit, unit) tuples."""
        from ai8x_nb.plots import budget_items

        return budget_items(self.report) if self.report is not None else []

    # ----------------------------------------------------------------- checks
    def check(self):
        """Re-validate every row, then check the whole model on the device when all are valid."""
        self.results = specs.validate_spec(self._rows, self.input_shape, self._device,
                                           self.num_classes)
        self.report, self.check_error = None, None
        if self._rows and all(r[0] for r in self.results):
            try:
                from ai8x_nb.check import check_model

                self.report = check_model(self.to_model(), self._device)
            except Exception as err:  # noqa: BLE001 - shown in the table, never raised
                self.check_error = f"{type(err).__name__}: {err}"
                logger.debug("check_model failed in the spec table", exc_info=True)

    def set_device(self, device):
        """Check the rows against another device."""
        self._device = get_device(device).name
        self.check()

    # ---------------------------------------------------------------- editing
    def insert_row(self, index, layer_type="conv2d", **fields):
        """Insert a row of `layer_type` (defaults as `ai8x_nb.spec.default_row`) before `index`."""
        row = specs.default_row(layer_type)
        row.update(fields)
        self._rows.insert(index, specs.normalize_row(row, index))
        self.check()

    def add_row(self, layer_type="conv2d", **fields):
        """Append a row of `layer_type`."""
        self.insert_row(len(self._rows), layer_type, **fields)

    def delete_row(self, index):
        """Remove the row at `index`."""
        del self._rows[index]
        self.check()

    def move_row(self, index, offset):
        """Move the row at `index` by `offset` (-1 up, +1 down); False when it cannot move."""
        target = index + offset
        if not 0 <= target < len(self._rows) or target == index:
            return False
        self._rows.insert(target, self._rows.pop(index))
        self.check()
        return True

    def set_field(self, index, key, value):
        """Set one spec field of one row and re-check.

        A new `type` replaces the row by that type's defaults (keeping its filters/units);
        switching `pooling` on gives a 2x2 pool. A value the spec rejects stays in the row,
        which then shows the error.
        """
        row = dict(self._rows[index])
        if key == "type":
            new = specs.default_row(value)
            size = row.get("filters", row.get("units"))
            for size_key in ("filters", "units"):
                if size_key in new and size is not None:
                    new[size_key] = size
            self._rows[index] = new
        else:
            row[key] = value
            if key == "pooling" and value is not None and row.get("pool_size") is None:
                row["pool_size"], row["pool_strides"] = POOL_DEFAULT, POOL_DEFAULT
            try:
                self._rows[index] = specs.normalize_row(row, index)
            except specs.SpecError:
                self._rows[index] = row
        self.check()

    # ---------------------------------------------------------------- columns
    def column_values(self, index):
        """The editor's column values of row `index` (`COLUMNS` -> value, widget-ready)."""
        row = self._rows[index]
        kind = row["type"]
        if kind == "dropout":
            other = str(row["rate"])
        elif kind == "reshape":
            other = ",".join(str(v) for v in row["target_shape"])
        else:
            other = ""
        return {
            "type": kind,
            "size": int(row.get("filters", row.get("units", 0)) or 0),
            "kernel_size": _first(row.get("kernel_size") or None, 3),
            "padding": row.get("padding", 1) if row.get("padding") in (0, 1, 2) else 1,
            "pooling": str(row.get("pooling")),
            "pool_size": _first(row.get("pool_size"), POOL_DEFAULT),
            "pool_strides": _first(row.get("pool_strides"), POOL_DEFAULT),
            "activation": str(row.get("activation")),
            "wide": bool(row.get("wide", False)),
            "use_bias": bool(row.get("use_bias", False)),
            "other": other,
        }

    def column_enabled(self, index, column):
        """Whether row `index` uses `column` (a conv row's pool size needs pooling on)."""
        row = self._rows[index]
        if column == "type":
            return True
        if column in _POOL_COLUMNS and row["type"] in specs.CONV_TYPES:
            return row.get("pooling") is not None
        return column in ENABLED[row["type"]]

    def set_column(self, index, column, value):
        """Set an editor column of one row (as typing in the table does) and re-check.

        Column values are the widgets': "None" for no pooling/activation, "size" is the
        filters or units, "other" the dropout rate or the reshape target ("8,16,16").
        """
        kind = self._rows[index]["type"]
        key = column
        if column in ("pooling", "activation"):
            value = None if value == "None" else value
        elif column == "size":
            key = "units" if kind == "dense" else "filters"
        elif column == "other":
            key = "rate" if kind == "dropout" else "target_shape"
            value = _parse_other(kind, value)
        self.set_field(index, key, value)

    # ------------------------------------------------------------------ output
    def to_model(self, name="model"):
        """Build the model (`ai8x_nb.spec.spec_to_model`); raises `SpecError` if invalid."""
        return specs.spec_to_model(self._rows, self.input_shape, self.num_classes,
                                   device=self._device, name=name)

    def to_python(self, variable="model_spec"):
        """The spec as a Python literal assignment, to paste into the parameters cell."""
        return specs.spec_to_python(self._rows, variable)

    def to_json(self):
        """The spec as JSON text (e.g. for `ai8x-nb run NAME -p model_spec '<json>'`)."""
        return json.dumps(self._rows)

    def save(self, path):
        """Write the spec to a `.spec.json` file; returns its `Path`.

        Raises:
            SpecError: the spec is malformed, or the path does not end in `.spec.json`.
        """
        written = specs.save_spec(self._rows, path)
        logger.info("model spec saved to %s", written)
        return written


def _parse_other(kind, text):
    """The "other" column's text as a dropout rate or a reshape target (else the text)."""
    try:
        if kind == "dropout":
            return float(text)
        return [int(v) for v in str(text).replace("x", ",").split(",") if v.strip()]
    except ValueError:
        return text
