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
import re
import types

from ai8x_nb import spec as specs
from ai8x_nb.devices import get_device

__all__ = ["SpecTable", "EditorRowError", "COLUMNS", "ENABLED", "HEAD_TYPES", "POOL_DEFAULT"]

logger = logging.getLogger(__name__)

COLUMNS = ("type", "size", "kernel_size", "padding", "dilation", "groups", "pooling",
           "pool_size", "pool_strides", "pool_dilation", "activation", "wide", "use_bias",
           "other")
"""The editor's columns, in table order."""

INT_COLUMNS = frozenset({"size", "kernel_size", "dilation", "groups", "pool_size",
                         "pool_strides", "pool_dilation"})
"""Columns holding a whole number (typed as text: "3.5" or an empty field is an error)."""

_INT_FIELDS = frozenset({"filters", "units", "kernel_size", "dilation", "groups",
                         "pool_size", "pool_strides", "pool_dilation"})

_CONV_COLUMNS = frozenset({"size", "kernel_size", "padding", "pooling", "pool_size",
                           "pool_strides", "activation", "wide", "use_bias"})
_POOL_COLUMNS = frozenset({"pool_size", "pool_strides"})
ENABLED = types.MappingProxyType({
    # The synthesis tool dilates Conv1d only (both devices); pooling in 2D on the MAX78002
    # (`device_columns`).
    "conv2d": _CONV_COLUMNS | {"pool_dilation", "groups"},
    "conv1d": _CONV_COLUMNS | {"dilation"},
    "convtranspose2d": _CONV_COLUMNS | {"pool_dilation"},
    "dense": frozenset({"size", "activation", "wide", "use_bias"}),
    "maxpool": _POOL_COLUMNS | {"pool_dilation"}, "avgpool": _POOL_COLUMNS | {"pool_dilation"},
    "flatten": frozenset(), "dropout": frozenset({"other"}), "reshape": frozenset({"other"}),
})
"""The columns each layer type uses (the others are disabled in its row)."""

HEAD_TYPES = frozenset({"flatten", "dense", "dropout"})
"""Row types of a classifier head: "Add layer" inserts feature layers above them."""

POOL_DEFAULT = 2
"""Pool size and stride a row gets when pooling is switched on."""


def _whole(value):
    """An int field's value for its widget: a typed text ("3.5") stays text."""
    return value if isinstance(value, str) else int(value)


def _first(value, default):
    if value is None:
        return default
    return _whole(value[0] if isinstance(value, (list, tuple)) else value)


class SpecTable:
    """A model spec being edited, validated row by row against a device.

    Args:
        spec: the starting spec (list of row dicts).
        input_shape: one sample's shape without batch, e.g. `dataset.input_shape`.
        num_classes: the number of classes the last layer must output (None: no check).
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.

    Attributes:
        input_shape, num_classes: as given.
        results: one `(ok, message, output_shape, params)` per row (`validate_spec`).
        report: the `CheckReport` of the whole model, or None while a row has an error.
        check_error: the text of an unexpected `check_model` failure, or None.

    Raises:
        SpecError: a malformed starting spec.
        ai8x_nb.errors.UnknownDeviceError: an unknown device.
    """

    def __init__(self, spec, input_shape, num_classes=None, device=None):
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
    def first_bad(self):
        """Index of the first row with an error, or None.

        Rows below it are validated on that row's input (so their own mistakes still show),
        but their shapes and parameters are not the model's: the table shows them as unknown.
        """
        bad = self.bad_rows
        return bad[0] if bad else None

    @property
    def parameters(self):
        """Parameters of the rows above the first error (all rows when none has one)."""
        stop = self.first_bad
        return sum(r[3] for r in self.results[:stop])

    def device_errors(self):
        """The device check's errors by row: {row index: [messages]}, each naming the row.

        The check names Keras layers ('conv2'); rows get their layer's name by
        `ai8x_nb.spec.layer_names`, so each error is given to the row whose layer it names.
        Errors naming no row are under the key None.
        """
        found = {}
        if self.report is None:
            return found
        names = specs.layer_names(self._rows)
        for err in self.report.errors:
            rows = [i for i, name in enumerate(names)
                    if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", err)]
            key = rows[0] if rows else None
            found.setdefault(key, []).append(err)
        return found

    def head_start(self):
        """Where "Add layer" inserts a feature layer: before the classifier head.

        The head is the trailing run of flatten/dense/dropout rows; without one, the last row
        (e.g. a 1x1 convolution to the classes) is the head.
        """
        index = len(self._rows)
        while index > 0 and self._rows[index - 1]["type"] in HEAD_TYPES:
            index -= 1
        if index == len(self._rows):
            index = max(len(self._rows) - 1, 0)
        return index

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
        for i, row in enumerate(self._rows):  # a typed "3.5" or "": say so, not a TypeError
            typed = [(k, v) for k, v in row.items() if k in _INT_FIELDS and isinstance(v, str)]
            if typed:
                key, value = typed[0]
                self.results[i] = (False, f"Model spec row {i} ({row['type']}): {key}={value!r} "
                                          f"is not a whole number. Type an integer such as 3.",
                                   None, 0)
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

    def add_layer(self, layer_type="conv2d", **fields):
        """Insert a row where a new layer of `layer_type` fits; returns its index.

        Convolutions, pooling and reshapes go before the classifier head (`head_start`), so
        the model still ends in its classifier; dense and dropout rows go before the last row.
        """
        if layer_type in ("dense", "dropout"):
            index = max(len(self._rows) - 1, 0)
        else:
            index = self.head_start()
        self.insert_row(index, layer_type, **fields)
        return index

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
            for key_ in new:  # what both types have (kernel, padding, activation...) is kept
                if key_ not in ("type", "filters", "units") and row.get(key_) is not None:
                    new[key_] = row[key_]
            try:
                self._rows[index] = specs.normalize_row(new, index)
            except specs.SpecError:
                self._rows[index] = specs.default_row(value)
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
            "size": _whole(row.get("filters", row.get("units", 0)) or 0),
            "kernel_size": _first(row.get("kernel_size") or None, 3),
            "padding": row.get("padding", 1) if row.get("padding") in (0, 1, 2) else 1,
            "dilation": _whole(row.get("dilation", 1)),
            "groups": _whole(row.get("groups", 1)),
            "pooling": str(row.get("pooling")),
            "pool_size": _first(row.get("pool_size"), POOL_DEFAULT),
            "pool_strides": _first(row.get("pool_strides"), POOL_DEFAULT),
            "pool_dilation": _first(row.get("pool_dilation"), 1),
            "activation": str(row.get("activation")),
            "wide": bool(row.get("wide", False)),
            "use_bias": bool(row.get("use_bias", False)),
            "other": other,
        }

    def column_offered(self, column):
        """Whether the table needs `column` at all: some row's type uses it on this device (the
        editor hides the dilation, groups and pool-dilation columns otherwise)."""
        device = get_device(self._device)
        if column == "pool_dilation" and device.max_pool_dilation == 1:
            return False
        if column == "groups" and not device.depthwise:
            return False
        return any(column in ENABLED[row["type"]] for row in self._rows)

    def column_enabled(self, index, column):
        """Whether row `index` uses `column` (a conv row's pool size needs pooling on)."""
        row = self._rows[index]
        if column == "type":
            return True
        device = get_device(self._device)
        if column == "pool_dilation" and device.max_pool_dilation == 1:
            return False  # the MAX78000 has no pooling dilation
        if column == "groups" and not device.depthwise:
            return False  # nor depthwise convolution
        if column in _POOL_COLUMNS | {"pool_dilation"} and row["type"] in specs.CONV_TYPES:
            return row.get("pooling") is not None and column in ENABLED[row["type"]]
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
        if column in INT_COLUMNS:
            value = _parse_int(value)
        elif column == "other":
            key = "rate" if kind == "dropout" else "target_shape"
            value = _parse_other(kind, value)
        self.set_field(index, key, value)

    def raise_if_invalid(self):
        """Raise `EditorRowError` naming the first row in error (or a device error's row).

        Raises:
            EditorRowError: one line: the row, its error, and the fix.
        """
        stop = self.first_bad
        if stop is not None:
            message = self.results[stop][1]
            more = len(self.bad_rows) - 1
            tail = f" ({more} more row(s) in red)" if more > 0 else ""
            raise EditorRowError(f"{_editor_row(message)}{tail} Fix the row in red in the "
                                 f"editor, then run this cell again.")
        if self.check_error:
            raise EditorRowError(f"Layer editor: the model check failed: {self.check_error}")
        if self.report is not None and not self.report.ok:
            by_row = self.device_errors()
            row = next(iter(by_row))
            where = f"row {row}" if row is not None else "the model"
            raise EditorRowError(
                f"Layer editor {where} does not fit {self._device}: {by_row[row][0]}"
                f"{' (and more in the editor)' if len(self.report.errors) > 1 else ''}")

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


class EditorRowError(specs.SpecError):
    """A row of the table is in error: the model cannot be built from it.

    In IPython the error shows as its one-line message (no traceback): the row, the value,
    the limit and the fix are all in it.
    """

    def _render_traceback_(self):
        return [f"\x1b[31m{type(self).__name__}: {self}\x1b[0m"]


def _editor_row(message):
    """A row error as the editor names it: "Layer editor row N (type): ..."."""
    return re.sub(r"^Model spec row", "Layer editor row", message)


def _parse_int(value):
    """A typed whole number as an int; anything else ("3.5", "") as typed, for the row's error."""
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else text


def _parse_other(kind, text):
    """The "other" column's text as a dropout rate or a reshape target (else the text)."""
    try:
        if kind == "dropout":
            return float(text)
        return [int(v) for v in str(text).replace("x", ",").split(",") if v.strip()]
    except ValueError:
        return text
