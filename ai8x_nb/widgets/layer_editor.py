"""An ipywidgets table to edit a model spec, checked live against the device.

The widgets are a thin binding over `ai8x_nb.spec_table.SpecTable`, which does the editing,
the row-by-row validation and the device check; `editor_view` renders its state (status
cells, summary, memory bars, and the static figure headless runs and GitHub show).
"""

import logging

from ai8x_nb import spec as specs
from ai8x_nb.devices import DEVICES
from ai8x_nb.parameters import DEFAULT_DEVICE
from ai8x_nb.spec_table import COLUMNS, SpecTable
from ai8x_nb.widgets import editor_view as view

__all__ = ["LayerEditor", "CSS_CLASS"]

logger = logging.getLogger(__name__)

CSS_CLASS = "ai8x-layer-editor"
"""CSS class of the editor's outer box (the browser test looks for it)."""

HEADERS = ("#", "type", "filters", "kernel", "pad", "pool", "size", "stride",
           "act", "wide", "bias", "rate/shape", "", "output / error", "cycles")
WIDTHS = ("24px", "112px", "64px", "50px", "50px", "66px", "50px", "50px", "66px", "34px",
          "34px", "72px", "132px", "320px", "130px")
BUTTONS = (("insert", "plus", "insert a layer above"), ("up", "arrow-up", "move up"),
           ("down", "arrow-down", "move down"), ("delete", "trash", "delete"))


class LayerEditor:
    """Edit a model spec in a table of widgets, with live device checks.

    Args:
        spec: the starting spec (list of row dicts, e.g. `ai8x_nb.models.seed_spec("mnist")`).
        input_shape: one sample's shape without batch, e.g. `dataset.input_shape`.
        num_classes: the number of classes the last layer must output (None: no check).
        device: "MAX78000" or "MAX78002" (a dropdown in the editor changes it).
        save_path: where "Save spec" writes the spec (the button is off without it).

    Attributes:
        table: the `SpecTable` being edited.
        widget: the outer `ipywidgets.VBox` (CSS class `ai8x-layer-editor`).
        rows: one dict per spec row mapping field names ("type", "size", "kernel_size",
            "padding", "pooling", "pool_size", "pool_strides", "activation", "wide",
            "use_bias", "other", "insert", "up", "down", "delete", "status", "cycles") to
            widgets ("cycles": the row's accelerator cycles with a bar of its share).
        results, report, check_error: the table's (see `SpecTable`).

    Example:

    >>> editor = LayerEditor(seed_spec("mnist"), (28, 28, 1), 10)  # doctest: +SKIP
    >>> editor                     # the table in JupyterLab, a figure headless  # doctest: +SKIP
    >>> print(editor.to_python())  # paste into the parameters cell  # doctest: +SKIP
    >>> model = editor.to_model()  # doctest: +SKIP
    """

    def __init__(self, spec, input_shape, num_classes=None, device=DEFAULT_DEVICE, *,
                 save_path=None):
        import ipywidgets as w

        self._w = w
        self.table = SpecTable(spec, input_shape, num_classes, device)
        self.save_path = save_path
        self._busy = False
        self.rows = []
        self.device_dropdown = w.Dropdown(options=list(DEVICES), value=self.table.device,
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
        header = w.HBox([w.HTML(f"<b>{h}</b>", layout=w.Layout(width=width))
                         for h, width in zip(HEADERS, WIDTHS)])
        self.widget = w.VBox([
            w.HBox([self.device_dropdown, self.add_type, self.add_button, self.save_button,
                    self.save_status]),
            header, self.rows_box, self.summary, self.budget, code_box])
        self.widget.add_class(CSS_CLASS)
        self._rebuild()

    # ------------------------------------------------------------ public API
    input_shape = property(lambda self: self.table.input_shape, doc="One sample's shape.")
    num_classes = property(lambda self: self.table.num_classes, doc="Classes to output.")
    spec = property(lambda self: self.table.spec, doc="The current spec (a new list).")
    device = property(lambda self: self.table.device, doc="The selected device name.")
    ok = property(lambda self: self.table.ok, doc="Every row valid and the model fits.")
    results = property(lambda self: self.table.results, doc="`validate_spec` per row.")
    report = property(lambda self: self.table.report, doc="The `CheckReport`, or None.")
    check_error = property(lambda self: self.table.check_error, doc="A check failure, or None.")

    def to_model(self, name="model"):
        """Build the edited model (`ai8x_nb.spec.spec_to_model`); raises `SpecError` if invalid."""
        return self.table.to_model(name)

    def to_python(self, variable="model_spec"):
        """The spec as a Python literal assignment, to paste into the parameters cell."""
        return self.table.to_python(variable)

    def to_json(self):
        """The spec as JSON text (e.g. for `ai8x-nb run NAME -p model_spec '<json>'`)."""
        return self.table.to_json()

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
        return self.table.save(path)

    def add_row(self, layer_type="conv2d", **fields):
        """Append a row of `layer_type` (fields default as in `ai8x_nb.spec.default_row`)."""
        self.table.add_row(layer_type, **fields)
        self._rebuild()

    def insert_row(self, index, layer_type="conv2d", **fields):
        """Insert a new row before position `index`."""
        self.table.insert_row(index, layer_type, **fields)
        self._rebuild()

    def delete_row(self, index):
        """Remove the row at `index`."""
        self.table.delete_row(index)
        self._rebuild()

    def move_row(self, index, offset):
        """Move the row at `index` by `offset` positions (-1 up, +1 down), within bounds."""
        if self.table.move_row(index, offset):
            self._rebuild()

    def set_field(self, index, key, value):
        """Set one field of one row (as typing in the table does) and re-check."""
        self.table.set_field(index, key, value)
        self._after_edit(index, key)

    def refresh(self):
        """Re-validate every row and show the results."""
        self.table.check()
        self._show()

    def figure(self):
        """A static matplotlib figure of the editor: the layer table and the budget bars."""
        return view.figure(self.table)

    # --------------------------------------------------------------- display
    def _repr_mimebundle_(self, include=None, exclude=None):
        from ai8x_nb import plots

        bundle = {}
        widget_bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(widget_bundle, tuple):
            widget_bundle = widget_bundle[0]
        bundle.update(widget_bundle or {})
        bundle["image/png"] = plots.figure_png_b64(self.figure())
        bundle["text/plain"] = view.text_table(self.table)
        return bundle

    def _show(self):
        cycles = self.table.row_cycles()
        for i, result in enumerate(self.table.results):
            self.rows[i]["status"].value = view.status_html(result)
            self.rows[i]["cycles"].value = view.latency_html(cycles[i], self.table)
        self.summary.value = view.summary_html(self.table)
        self.budget.value = view.budget_html(self.table)
        try:
            self.code.value = self.table.to_python()
        except specs.SpecError as err:
            self.code.value = f"# fix the spec first: {err}"

    # -------------------------------------------------------------- binding
    def _make_row(self, index):
        w = self._w
        values = self.table.column_values(index)
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
        entry = dict(widgets)
        for column, widget in widgets.items():
            widget.disabled = not self.table.column_enabled(index, column)
            widget.observe(self._on_change(entry, column), names="value")
        for action, icon, tip in BUTTONS:
            button = w.Button(icon=icon, tooltip=tip, layout=w.Layout(width="30px",
                                                                      padding="0px"))
            button.on_click(self._on_button(entry, action))
            entry[action] = button
        status = w.HTML(layout=lay[13])
        status.add_class("ai8x-row-status")
        cycles = w.HTML(layout=lay[14])
        cycles.add_class("ai8x-row-cycles")
        box = w.HBox([w.HTML(str(index), layout=lay[0])] + [widgets[c] for c in COLUMNS]
                     + [w.HBox([entry[a] for a, _, _ in BUTTONS], layout=lay[12]), status,
                        cycles])
        box.add_class("ai8x-layer-row")
        entry.update(status=status, cycles=cycles, box=box, index=index)
        return entry

    def _rebuild(self):
        self._busy = True
        try:
            self.rows = [self._make_row(i) for i in range(len(self.table))]
            self.rows_box.children = [entry["box"] for entry in self.rows]
        finally:
            self._busy = False
        self._show()

    def _sync_row(self, index):
        """Push a row's (normalised) values back into its widgets without firing events."""
        entry, values = self.rows[index], self.table.column_values(index)
        self._busy = True
        try:
            for column in COLUMNS:
                if column in ("type", "other"):
                    continue
                if entry[column].value != values[column]:
                    entry[column].value = values[column]
                if column in ("pool_size", "pool_strides"):
                    entry[column].disabled = not self.table.column_enabled(index, column)
        finally:
            self._busy = False

    def _after_edit(self, index, key):
        if key == "type":
            self._rebuild()  # another type: other columns, fresh widgets
        else:
            self._sync_row(index)
            self._show()

    def _on_change(self, entry, column):
        def handler(change):
            if self._busy:
                return
            self.table.set_column(entry["index"], column, change["new"])
            self._after_edit(entry["index"], column)
        return handler

    def _on_button(self, entry, action):
        def handler(_):
            index = entry["index"]
            if action == "insert":
                self.insert_row(index, self.table.row(index)["type"])
            elif action == "delete":
                self.delete_row(index)
            else:
                self.move_row(index, -1 if action == "up" else 1)
        return handler

    def _on_device(self, change):
        self.table.set_device(change["new"])
        self._show()

    def _on_save(self):
        try:
            path = self.save()
        except (specs.SpecError, OSError) as err:
            self.save_status.value = (f"<span style='color:#b00'>{view.escape(str(err))}"
                                      f"</span>")
        else:
            where = view.escape(str(path))
            self.save_status.value = (f"saved to <code>{where}</code>: set <code>model_spec = "
                                      f"\"{where}\"</code> to train it in a batch run")
