"""An ipywidgets table to edit a model spec, checked live against the device.

Every change re-validates the spec row by row (`ai8x_nb.spec.validate_spec`): each row
shows its output shape and parameters, or the layer's own error text in red. When every row
is valid the whole model goes through `ai8x_nb.check.check_model`, whose totals drive the
memory bars (layers, weights, bias, data memory). The editor also displays as a static
matplotlib figure (table + budget bars), which is what headless runs and GitHub show.
"""

import json
import logging

from ai8x_nb import plots
from ai8x_nb import spec as specs
from ai8x_nb.devices import DEVICES, get_device

__all__ = ["LayerEditor", "CSS_CLASS"]

logger = logging.getLogger(__name__)

CSS_CLASS = "ai8x-layer-editor"
"""CSS class of the editor's outer box (the browser test looks for it)."""

FIELDS = ("type", "size", "kernel_size", "padding", "pooling", "pool_size", "pool_strides",
          "activation", "wide", "use_bias", "other")
HEADERS = ("#", "type", "filters", "kernel", "pad", "pool", "size", "stride",
           "act", "wide", "bias", "rate/shape", "", "output / error")
WIDTHS = ("24px", "112px", "64px", "50px", "50px", "66px", "50px", "50px", "66px", "34px",
          "34px", "72px", "132px", "320px")
ENABLED = {
    "conv2d": {"size", "kernel_size", "padding", "pooling", "pool_size", "pool_strides",
               "activation", "wide", "use_bias"},
    "dense": {"size", "activation", "wide", "use_bias"},
    "maxpool": {"pool_size", "pool_strides"},
    "flatten": set(),
    "dropout": {"other"},
    "reshape": {"other"},
}
ENABLED["conv1d"] = ENABLED["convtranspose2d"] = ENABLED["conv2d"]
ENABLED["avgpool"] = ENABLED["maxpool"]


def _html_escape(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _shape_text(shape):
    return "x".join(str(s) for s in shape) if shape else "?"


class LayerEditor:
    """Edit a model spec in a table of widgets, with live device checks.

    Args:
        spec: the starting spec (list of row dicts, e.g. `ai8x_nb.models.seed_spec("mnist")`).
        input_shape: one sample's shape without batch, e.g. `dataset.input_shape`.
        num_classes: the number of classes the last layer must output (None: no check).
        device: "MAX78000" or "MAX78002" (a dropdown in the editor changes it).

    Attributes:
        widget: the outer `ipywidgets.VBox` (CSS class `ai8x-layer-editor`).
        rows: one dict per spec row mapping field names ("type", "size", "kernel_size",
            "padding", "pooling", "pool_size", "pool_strides", "activation", "wide",
            "use_bias", "other", "insert", "up", "down", "delete", "status") to widgets.
        results: the last `validate_spec` result, one `(ok, message, shape, params)` per row.
        report: the last `CheckReport` (None while a row has an error).

    Example:

    >>> editor = LayerEditor(seed_spec("mnist"), (28, 28, 1), 10)  # doctest: +SKIP
    >>> editor                     # the table in JupyterLab, a figure headless  # doctest: +SKIP
    >>> print(editor.to_python())  # paste into the parameters cell  # doctest: +SKIP
    >>> model = editor.to_model()  # doctest: +SKIP
    """

    def __init__(self, spec, input_shape, num_classes=None, device="MAX78000", *,
                 save_path=None):
        import ipywidgets as w

        self._w = w
        self._spec = specs.normalize_spec(spec)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self._device = get_device(device).name
        self._busy = False
        self.rows = []
        self.results = []
        self.report = None
        self.check_error = None

        self.device_dropdown = w.Dropdown(options=list(DEVICES), value=self._device,
                                          description="device", layout=w.Layout(width="220px"))
        self.device_dropdown.observe(self._on_device, names="value")
        self.add_type = w.Dropdown(options=list(specs.LAYER_TYPES), value="conv2d",
                                   layout=w.Layout(width="140px"))
        self.add_button = w.Button(description="Add layer", icon="plus",
                                   layout=w.Layout(width="120px"))
        self.add_button.on_click(lambda _: self.add_row(self.add_type.value))
        self.rows_box = w.VBox()
        self.summary = w.HTML()
        self.budget = w.HTML()
        self.save_path = save_path
        self.save_button = w.Button(description="Save spec", icon="save",
                                    tooltip=f"write the spec to {save_path}",
                                    disabled=save_path is None, layout=w.Layout(width="120px"))
        self.save_button.on_click(lambda _: self._on_save())
        self.save_status = w.HTML()
        self.code = w.Textarea(layout=w.Layout(width="100%", height="160px"))
        self.code.add_class("ai8x-layer-editor-code")
        code_box = w.Accordion(children=[self.code], titles=("model_spec (paste into the "
                                                              "parameters cell)",))
        code_box.selected_index = None
        self.widget = w.VBox([
            w.HBox([self.device_dropdown, self.add_type, self.add_button, self.save_button,
                    self.save_status]),
            self._header(), self.rows_box, self.summary, self.budget, code_box])
        self.widget.add_class(CSS_CLASS)
        self._rebuild()

    # ------------------------------------------------------------ public API
    @property
    def spec(self):
        """The current spec: a new list of canonical row dicts."""
        return [dict(row) for row in self._spec]

    @property
    def device(self):
        """The selected device name."""
        return self._device

    @property
    def ok(self):
        """True when every row is valid and the model check found no error."""
        return (all(r[0] for r in self.results) and self.report is not None
                and self.report.ok)

    def to_model(self, name="model"):
        """Build the edited model (`ai8x_nb.spec.spec_to_model`); raises `SpecError` if invalid."""
        return specs.spec_to_model(self._spec, self.input_shape, self.num_classes,
                                   device=self._device, name=name)

    def to_python(self, variable="model_spec"):
        """The spec as a Python literal assignment, to paste into the parameters cell."""
        return specs.spec_to_python(self._spec, variable)

    def to_json(self):
        """The spec as JSON text (e.g. for `ai8x-nb run NAME -p model_spec '<json>'`)."""
        return json.dumps(self._spec)

    def save(self, path=None):
        """Write the current spec to a `.spec.json` file; returns its `Path`.

        A notebook run reproduces the edited model with `model_spec = "<that path>"` in its
        parameters cell (or `-p model_spec <path>` on the command line).

        Raises:
            SpecError: no path given (and no `save_path`), or the spec is malformed.
        """
        path = path or self.save_path
        if path is None:
            raise specs.SpecError("LayerEditor.save needs a path (or save_path= when created).")
        written = specs.save_spec(self._spec, path)
        logger.info("model spec saved to %s", written)
        return written

    def _on_save(self):
        try:
            path = self.save()
        except (specs.SpecError, OSError) as err:
            self.save_status.value = f"<span style='color:#b00'>{_html_escape(str(err))}</span>"
        else:
            self.save_status.value = (f"saved to <code>{_html_escape(str(path))}</code>: set "
                                      f"<code>model_spec = \"{_html_escape(str(path))}\"</code> "
                                      f"to train it in a batch run")

    def add_row(self, layer_type="conv2d", **fields):
        """Append a row of `layer_type` (fields default as in `ai8x_nb.spec.default_row`)."""
        self.insert_row(len(self._spec), layer_type, **fields)

    def insert_row(self, index, layer_type="conv2d", **fields):
        """Insert a new row before position `index`."""
        row = specs.default_row(layer_type)
        row.update(fields)
        self._spec.insert(index, specs.normalize_row(row, index))
        self._rebuild()

    def delete_row(self, index):
        """Remove the row at `index`."""
        del self._spec[index]
        self._rebuild()

    def move_row(self, index, offset):
        """Move the row at `index` by `offset` positions (-1 up, +1 down), within bounds."""
        target = index + offset
        if 0 <= target < len(self._spec) and target != index:
            self._spec.insert(target, self._spec.pop(index))
            self._rebuild()

    def set_field(self, index, key, value):
        """Set one field of one row (as typing in the table does) and re-check."""
        row = dict(self._spec[index])
        if key == "type":
            new = specs.default_row(value)
            size = row.get("filters", row.get("units"))
            for size_key in ("filters", "units"):
                if size_key in new and size is not None:
                    new[size_key] = size
            self._spec[index] = new
            self._rebuild()
            return
        row[key] = value
        if key == "pooling" and value is not None and row.get("pool_size") is None:
            row["pool_size"], row["pool_strides"] = 2, 2
        try:
            self._spec[index] = specs.normalize_row(row, index)
        except specs.SpecError:
            self._spec[index] = row
        self._sync_row(index)
        self.refresh()

    def refresh(self):
        """Re-validate every row and recompute the device budget."""
        self.results = specs.validate_spec(self._spec, self.input_shape, self._device,
                                           self.num_classes)
        for i, result in enumerate(self.results):
            self.rows[i]["status"].value = self._status_html(result)
        self.report, self.check_error = None, None
        if self._spec and all(r[0] for r in self.results):
            try:
                from ai8x_nb.check import check_model

                self.report = check_model(self.to_model(), self._device)
            except Exception as err:  # noqa: BLE001 - shown in the editor, never raised
                self.check_error = f"{type(err).__name__}: {err}"
                logger.debug("check_model failed in the editor", exc_info=True)
        self.summary.value = self._summary_html()
        self.budget.value = self._budget_html()
        try:
            self.code.value = self.to_python()
        except specs.SpecError as err:
            self.code.value = f"# fix the spec first: {err}"

    def figure(self):
        """A static matplotlib figure of the editor: the layer table and the budget bars."""
        from matplotlib.figure import Figure

        n = len(self._spec)
        has_budget = self.report is not None and plots.budget_items(self.report)
        table_height = 0.24 * (n + 2)
        height = table_height + (2.6 if has_budget else 0.4)
        fig = Figure(figsize=(11, height), layout="constrained")
        if has_budget:
            table_ax, bar_ax = fig.subplots(2, 1, height_ratios=[table_height, 2.6])
        else:
            table_ax, bar_ax = fig.subplots(), None
        table_ax.axis("off")
        cells, colors = [], []
        for i, row in enumerate(self._spec):
            ok, message, shape, params = (self.results[i] if i < len(self.results)
                                          else (True, "", None, 0))
            cells.append([str(i), row["type"], self._describe(row),
                          _shape_text(shape) if ok else "-", f"{params:,}" if ok else "-",
                          "ok" if ok else (message[:70] + ("..." if len(message) > 70 else ""))])
            colors.append(["white"] * 5 + ["#eaf6ea" if ok else "#fbe3e3"])
        if cells:
            table = table_ax.table(cellText=cells, cellColours=colors, loc="center",
                                   colLabels=["#", "type", "config", "output", "params",
                                              "status"], cellLoc="left")
            table.auto_set_font_size(False)
            table.set_fontsize(8)
            table.auto_set_column_width(list(range(6)))
        table_ax.set_title(self._summary_text(), fontsize=9, loc="left")
        if bar_ax is not None:
            plots.draw_budget(bar_ax, self.report)
        return fig

    # --------------------------------------------------------------- display
    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {}
        widget_bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(widget_bundle, tuple):
            widget_bundle = widget_bundle[0]
        bundle.update(widget_bundle or {})
        bundle["image/png"] = plots.figure_png_b64(self.figure())
        bundle["text/plain"] = self._text_table()
        return bundle

    def _text_table(self):
        lines = [self._summary_text()]
        for i, row in enumerate(self._spec):
            ok, message, shape, params = (self.results[i] if i < len(self.results)
                                          else (True, "", None, 0))
            state = f"{_shape_text(shape)}  {params:,} params" if ok else f"ERROR {message}"
            lines.append(f"{i:>3} {row['type']:<16} {self._describe(row):<34} {state}")
        return "\n".join(lines)

    # ------------------------------------------------------------- internals
    def _header(self):
        w = self._w
        cells = [w.HTML(f"<b>{h}</b>", layout=w.Layout(width=width))
                 for h, width in zip(HEADERS, WIDTHS)]
        return w.HBox(cells)

    @staticmethod
    def _describe(row):
        kind = row["type"]
        if kind in specs.CONV_TYPES:
            text = f"{row['filters']} k{row['kernel_size']} p{row['padding']}"
            if row["pooling"]:
                text = f"{row['pooling']}pool {row['pool_size']}/{row['pool_strides']} + " + text
            text += f" {row['activation'] or 'linear'}"
        elif kind == "dense":
            text = f"{row['units']} {row['activation'] or 'linear'}"
        elif kind in specs.POOL_TYPES:
            text = f"{row['pool_size']}/{row['pool_strides']}"
        elif kind == "dropout":
            text = f"rate {row['rate']}"
        elif kind == "reshape":
            text = _shape_text(row["target_shape"])
        else:
            text = ""
        if row.get("wide"):
            text += " wide"
        if kind in specs.CONV_TYPES + ("dense",) and not row.get("use_bias"):
            text += " no-bias"
        return text

    def _field_values(self, row):
        kind = row["type"]
        size = row.get("filters", row.get("units", 0))
        if kind == "dropout":
            other = str(row["rate"])
        elif kind == "reshape":
            other = ",".join(str(v) for v in row["target_shape"])
        else:
            other = ""
        pool_default = 2
        return {
            "type": kind,
            "size": int(size or 0),
            "kernel_size": int(row.get("kernel_size") or 3) if not isinstance(
                row.get("kernel_size"), list) else int(row["kernel_size"][0]),
            "padding": row.get("padding", 1) if row.get("padding") in (0, 1, 2) else 1,
            "pooling": str(row.get("pooling")),
            "pool_size": self._first(row.get("pool_size"), pool_default),
            "pool_strides": self._first(row.get("pool_strides"), pool_default),
            "activation": str(row.get("activation")),
            "wide": bool(row.get("wide", False)),
            "use_bias": bool(row.get("use_bias", False)),
            "other": other,
        }

    @staticmethod
    def _first(value, default):
        if value is None:
            return default
        return int(value[0] if isinstance(value, (list, tuple)) else value)

    def _make_row(self, index):
        w = self._w
        row = self._spec[index]
        values = self._field_values(row)
        lay = [w.Layout(width=width) for width in WIDTHS]
        widgets = {
            "type": w.Dropdown(options=list(specs.LAYER_TYPES), value=values["type"],
                               layout=lay[1]),
            "size": w.IntText(value=values["size"], layout=lay[2]),
            "kernel_size": w.IntText(value=values["kernel_size"], layout=lay[3]),
            "padding": w.Dropdown(options=[0, 1, 2], value=values["padding"], layout=lay[4]),
            "pooling": w.Dropdown(options=["None", "max", "avg"], value=values["pooling"],
                                  layout=lay[5]),
            "pool_size": w.IntText(value=values["pool_size"], layout=lay[6]),
            "pool_strides": w.IntText(value=values["pool_strides"], layout=lay[7]),
            "activation": w.Dropdown(options=["None", "relu", "abs"],
                                     value=values["activation"], layout=lay[8]),
            "wide": w.Checkbox(value=values["wide"], indent=False, layout=lay[9]),
            "use_bias": w.Checkbox(value=values["use_bias"], indent=False, layout=lay[10]),
            "other": w.Text(value=values["other"], layout=lay[11]),
        }
        enabled = ENABLED[row["type"]]
        for key, widget in widgets.items():
            if key != "type":
                widget.disabled = key not in enabled or (
                    key in ("pool_size", "pool_strides") and row["type"] in specs.CONV_TYPES
                    and row.get("pooling") is None)
            widget.observe(self._on_change(widget), names="value")
            widget._ai8x_field = key
        buttons = {}
        for key, icon, tip in (("insert", "plus", "insert a layer above"),
                               ("up", "arrow-up", "move up"), ("down", "arrow-down", "move down"),
                               ("delete", "trash", "delete")):
            button = w.Button(icon=icon, tooltip=tip,
                              layout=w.Layout(width="30px", padding="0px"))
            button._ai8x_action = key
            button.on_click(self._on_button)
            buttons[key] = button
        index_label = w.HTML(str(index), layout=lay[0])
        status = w.HTML(layout=lay[13])
        status.add_class("ai8x-row-status")
        box = w.HBox([index_label] + [widgets[k] for k in FIELDS]
                     + [w.HBox(list(buttons.values()), layout=lay[12]), status])
        box.add_class("ai8x-layer-row")
        entry = dict(widgets)
        entry.update(buttons)
        entry.update(status=status, box=box, index=index)
        for widget in list(widgets.values()) + list(buttons.values()):
            widget._ai8x_row = entry
        return entry

    def _rebuild(self):
        self._busy = True
        try:
            self.rows = [self._make_row(i) for i in range(len(self._spec))]
            self.rows_box.children = [entry["box"] for entry in self.rows]
        finally:
            self._busy = False
        self.refresh()

    def _sync_row(self, index):
        """Push a row's (normalised) values back into its widgets without firing events."""
        entry, row = self.rows[index], self._spec[index]
        values = self._field_values(row)
        self._busy = True
        try:
            for key in FIELDS:
                if key in ("type", "other"):
                    continue
                if entry[key].value != values[key]:
                    entry[key].value = values[key]
            if row["type"] in specs.CONV_TYPES:
                for key in ("pool_size", "pool_strides"):
                    entry[key].disabled = row.get("pooling") is None
        finally:
            self._busy = False

    def _on_change(self, widget):
        def handler(change):
            if self._busy:
                return
            entry = widget._ai8x_row
            key, value = widget._ai8x_field, change["new"]
            self._apply_field(entry["index"], key, value)
        return handler

    def _apply_field(self, index, key, value):
        row = self._spec[index]
        if key in ("pooling", "activation"):
            value = None if value == "None" else value
        if key == "size":
            key = "units" if row["type"] == "dense" else "filters"
        if key == "other":
            if row["type"] == "dropout":
                key = "rate"
                try:
                    value = float(value)
                except ValueError:
                    pass
            else:
                key = "target_shape"
                try:
                    value = [int(v) for v in str(value).replace("x", ",").split(",") if v.strip()]
                except ValueError:
                    pass
        self.set_field(index, key, value)

    def _on_button(self, button):
        index = button._ai8x_row["index"]
        action = button._ai8x_action
        if action == "insert":
            self.insert_row(index, self._spec[index]["type"] if self._spec else "conv2d")
        elif action == "delete":
            self.delete_row(index)
        else:
            self.move_row(index, -1 if action == "up" else 1)

    def _on_device(self, change):
        self._device = get_device(change["new"]).name
        self.refresh()

    def _status_html(self, result):
        ok, message, shape, params = result
        if ok:
            return (f"<span style='color:#2a7a2a'>&rarr; {_shape_text(shape)} &middot; "
                    f"{params:,} params</span>")
        return (f"<span class='ai8x-row-error' style='color:#c00;white-space:normal'>"
                f"{_html_escape(message)}</span>")

    def _summary_text(self):
        bad = [i for i, r in enumerate(self.results) if not r[0]]
        params = sum(r[3] for r in self.results)
        text = (f"{len(self._spec)} rows, {params:,} parameters, input "
                f"{_shape_text(self.input_shape)}, device {self._device}")
        if bad:
            return text + f": errors in row(s) {', '.join(map(str, bad))}"
        if self.report is not None and not self.report.ok:
            return text + f": {len(self.report.errors)} device error(s)"
        return text + (": OK" if self.report is not None else "")

    def _summary_html(self):
        lines = [f"<b>{_html_escape(self._summary_text())}</b>"]
        if self.report is not None:
            for err in self.report.errors:
                lines.append(f"<div class='ai8x-row-error' style='color:#c00'>"
                             f"{_html_escape(err)}</div>")
            for warn in self.report.warnings:
                lines.append(f"<div style='color:#a60'>{_html_escape(warn)}</div>")
        if self.check_error:
            lines.append(f"<div style='color:#c00'>model check failed: "
                         f"{_html_escape(self.check_error)}</div>")
        return "".join(lines)

    def _budget_html(self):
        if self.report is None:
            return "<i>Memory budget: fix the rows in red first.</i>" if self._spec else ""
        parts = ["<div class='ai8x-budget'><b>Memory budget on "
                 f"{_html_escape(self._device)}</b>"]
        for label, used, limit, unit in plots.budget_items(self.report):
            pct = 100.0 * used / limit
            color = "#d62728" if pct > 100 else ("#ff7f0e" if pct > 85 else "#1f77b4")
            parts.append(
                "<div style='display:flex;align-items:center;gap:8px;margin:2px 0'>"
                f"<span style='width:170px'>{label}</span>"
                "<span style='width:300px;height:12px;background:#eee;display:inline-block'>"
                f"<span style='width:{min(pct, 100):.1f}%;height:12px;background:{color};"
                "display:inline-block'></span></span>"
                f"<span>{int(used):,} / {int(limit):,} {unit} ({pct:.1f} %)</span></div>")
        parts.append("</div>")
        return "".join(parts)
