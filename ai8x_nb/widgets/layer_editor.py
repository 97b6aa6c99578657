"""An ipywidgets table to edit a model spec, checked live against the device.

The widgets are a thin binding over `ai8x_nb.spec_table.SpecTable`, which does the editing,
the row-by-row validation and the device check; `editor_view` renders its state (status
cells, summary, memory bars, and the static figure headless runs and GitHub show).
"""

import logging
import re
import uuid

from ai8x_nb import spec as specs
from ai8x_nb.devices import DEVICES
from ai8x_nb.notebooks import STATIC_FORM_BELOW
from ai8x_nb.spec_table import COLUMNS, EditorRowError, SpecTable
from ai8x_nb.widgets import editor_view as view

__all__ = ["LayerEditor", "EditorRowError", "CSS_CLASS", "GRID"]

logger = logging.getLogger(__name__)

CSS_CLASS = "ai8x-layer-editor"
"""CSS class of the editor's outer box (the browser test looks for it)."""

GRID = (
    ("index", "#", "24px"),
    ("type", "type", "104px"),
    ("size", "filters", "56px"),
    ("kernel_size", "kernel", "46px"),
    ("padding", "pad", "46px"),
    ("dilation", "dil", "40px"),
    ("groups", "groups", "52px"),
    ("pooling", "pool", "62px"),
    ("pool_size", "size", "44px"),
    ("pool_strides", "stride", "46px"),
    ("pool_dilation", "pdil", "40px"),
    ("activation", "act", "62px"),
    ("wide", "wide", "34px"),
    ("use_bias", "bias", "34px"),
    ("other", "rate/shape", "64px"),
    ("buttons", "", "112px"),
    ("cycles", "cycles", "84px"),
    ("status", "output / error", "minmax(130px, 1fr)"),
)
"""The table's columns, left to right: (key, header, CSS grid track). The header and every row
are grids with these tracks, so a header sits over its fields at any width; a new column is one
entry here (plus its widget in `LayerEditor._cell`, or an HTML cell in `_make_row`). The cycles
sit before the one flexible column (output / error, which wraps) so that they stay in view in a
notebook beside JupyterLab's file browser at 1440 px."""

OPTIONAL_COLUMNS = frozenset({"dilation", "groups", "pool_dilation"})
"""Shown only while some row can use them on the selected device (`SpecTable.column_offered`):
Conv1D dilation on either device, depthwise groups and pool dilation on the MAX78002."""
GRID_GAP_PX = 3


def grid_tracks(columns):
    """The CSS grid template of the shown `columns` (keys of `GRID`) and the narrowest the
    table gets with them: every track at its minimum, plus the gaps between them."""
    tracks = [track for key, _, track in GRID if key in columns]
    widths = [int(re.search(r"(\d+)px", track).group(1)) for track in tracks]
    return " ".join(tracks), f"{sum(widths) + GRID_GAP_PX * (len(tracks) - 1)}px"


GRID_TEMPLATE, GRID_MIN_WIDTH = grid_tracks({key for key, _, _ in GRID} - OPTIONAL_COLUMNS)
"""Without the optional columns; below that width the table scrolls sideways (its columns
never squeeze)."""
BUTTONS = (("insert", "plus", "insert a layer above"), ("up", "arrow-up", "move up"),
           ("down", "arrow-down", "move down"), ("delete", "trash", "delete"))
SNAPSHOT_CLASS = "ai8x-editor-snapshot"
"""CSS class of the editor's static image (shown when no live editor is on the page)."""


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

    def __init__(self, spec, input_shape, num_classes=None, device=None, *,
                 save_path=None):
        import ipywidgets as w

        self._w = w
        self.table = SpecTable(spec, input_shape, num_classes, device)
        self.save_path = save_path
        self._busy = False
        self._snapshot = None  # the display handle of the static image, once displayed
        self._snapshot_class = f"{SNAPSHOT_CLASS}-{uuid.uuid4().hex[:12]}"
        self.rows = []
        self.device_dropdown = w.Dropdown(options=list(DEVICES), value=self.table.device,
                                          description="device", layout=w.Layout(width="220px"))
        self.device_dropdown.observe(self._on_device, names="value")
        self.add_type = w.Dropdown(options=list(specs.LAYER_TYPES), value="conv2d",
                                   layout=w.Layout(width="140px"))
        self.add_button = w.Button(description="Add layer", icon="plus",
                                   tooltip="insert a layer before the classifier head",
                                   layout=w.Layout(width="120px", min_width="120px"))
        self.add_button.on_click(lambda _: self.add_layer(self.add_type.value))
        self._shown = self._shown_columns()
        self.rows_box = w.VBox(layout=w.Layout(width="100%",
                                               min_width=grid_tracks(self._shown)[1]))
        self.summary = w.HTML()
        self.budget = w.HTML()
        self.save_button = w.Button(description="Save spec", icon="save",
                                    tooltip=f"write the spec to {save_path}",
                                    disabled=save_path is None,
                                    layout=w.Layout(width="120px", min_width="120px"))
        self.save_button.on_click(lambda _: self._on_save())
        self.save_status = w.HTML(layout=w.Layout(width="100%"))
        self.save_status.add_class("ai8x-save-status")
        self.code = w.Textarea(layout=w.Layout(width="100%", height="160px"))
        self.code.add_class("ai8x-layer-editor-code")
        code_box = w.Accordion(children=[self.code], titles=("model_spec (paste into the "
                                                              "parameters cell)",))
        code_box.selected_index = None
        self._header_cells = {key: w.HTML(f"<b>{title}</b>", layout=self._cell_layout())
                              for key, title, _ in GRID}
        header = self._grid(list(self._header_cells.values()))
        header.add_class("ai8x-layer-header")
        self._header = header
        table = w.VBox([header, self.rows_box], layout=w.Layout(overflow="auto",
                                                                width="100%"))
        # While this live editor is on the page its static image (shown by a reopened
        # notebook, which has no kernel behind the widget) is hidden.
        hide = w.HTML(f"<style>.{self._snapshot_class} {{display: none;}}</style>",
                      layout=w.Layout(display="none"))
        toolbar = w.HBox([self.device_dropdown, self.add_type, self.add_button,
                          self.save_button], layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([toolbar, self.save_status, table, self.summary, self.budget,
                              code_box, hide])
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

    def add_layer(self, layer_type="conv2d", **fields):
        """Insert a row where it fits, as "Add layer" does: a convolution or pooling layer
        before the classifier head, a dense or dropout layer before the last row. Returns
        the new row's index."""
        index = self.table.add_layer(layer_type, **fields)
        self._rebuild()
        return index

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

    def raise_if_invalid(self):
        """Raise `EditorRowError` (shown as one line) when a row is in red or the model does
        not fit the device; the notebook's Model cell calls it before building the model."""
        self.table.raise_if_invalid()

    def refresh(self):
        """Re-validate every row and show the results."""
        self.table.check()
        self._show()

    def figure(self):
        """A static matplotlib figure of the editor: the layer table and the budget bars."""
        return view.figure(self.table)

    # --------------------------------------------------------------- display
    def _ipython_display_(self):
        """Show the live editor, and below it its static image, kept up to date.

        A saved notebook has no kernel behind the widget; the image (hidden while the live
        editor is on the page) then shows the editor's last state.
        """
        from IPython.display import display

        widget_bundle = self.widget._repr_mimebundle_()
        if isinstance(widget_bundle, tuple):
            widget_bundle = widget_bundle[0]
        widget_bundle = dict(widget_bundle or {})
        widget_bundle["text/plain"] = f"<LayerEditor: {view.summary_text(self.table)}>"
        display(widget_bundle, raw=True, metadata={STATIC_FORM_BELOW: True})
        self._snapshot = display(self._snapshot_bundle(), raw=True, display_id=True)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {}
        widget_bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        if isinstance(widget_bundle, tuple):
            widget_bundle = widget_bundle[0]
        bundle.update(widget_bundle or {})
        bundle.update(self._snapshot_bundle())
        bundle.pop("text/html", None)
        return bundle

    def _snapshot_bundle(self):
        from ai8x_nb import plots

        png = plots.figure_png_b64(self.figure())
        caption = view.escape(f"Layer editor (a picture of its last state): "
                              f"{view.summary_text(self.table)}")
        # Reopened without its kernel, the widget output above can only say "Loading widget"
        # or "model not found": hidden (in JupyterLab) unless it holds the live editor.
        stale = (f"<style>.jp-OutputArea-child:has(+ .jp-OutputArea-child "
                 f".{self._snapshot_class}):not(:has(.{CSS_CLASS})) {{display: none;}}</style>")
        return {"text/html": f"{stale}<div class='{SNAPSHOT_CLASS} {self._snapshot_class}'>"
                             f"<img alt='layer editor' src='data:image/png;base64,{png}'/>"
                             f"<div style='font-size:smaller;color:#666'>{caption}</div></div>",
                "image/png": png, "text/plain": view.text_table(self.table)}

    def _show(self):
        device_rows = self.table.device_errors()
        first_bad = self.table.first_bad
        cycles = self.table.row_cycles()
        for i, result in enumerate(self.table.results):
            self.rows[i]["status"].value = view.status_html(
                result, device_rows.get(i), None if first_bad is None or i <= first_bad
                else first_bad)
            self.rows[i]["cycles"].value = view.latency_html(cycles[i], self.table)
        self.summary.value = view.summary_html(self.table)
        self.budget.value = view.budget_html(self.table)
        try:
            self.code.value = self.table.to_python()
        except specs.SpecError as err:
            self.code.value = f"# fix the spec first: {err}"
        if self._snapshot is not None:
            self._snapshot.update(self._snapshot_bundle(), raw=True)

    # -------------------------------------------------------------- binding
    def _shown_columns(self):
        return {key for key, _, _ in GRID
                if key not in OPTIONAL_COLUMNS or self.table.column_offered(key)}

    def _grid(self, children):
        """A row of the table: a CSS grid with the tracks of the shown columns of `GRID`
        (`children`: one cell per column of `GRID`; the hidden ones are not displayed)."""
        template, min_width = grid_tracks(self._shown)
        for (key, _, _), cell in zip(GRID, children):
            cell.layout.display = None if key in self._shown else "none"
        return self._w.GridBox(children, layout=self._w.Layout(
            grid_template_columns=template, grid_gap=f"0px {GRID_GAP_PX}px", width="100%",
            min_width=min_width, align_items="center"))

    def _cell_layout(self):
        return self._w.Layout(width="auto", min_width="0px")

    def _cell(self, column, value):
        """The widget of one column (keys of `GRID`) holding `value`."""
        w, lay = self._w, self._cell_layout()
        choices = {"type": list(specs.LAYER_TYPES), "padding": [0, 1, 2],
                   "pooling": ["None", "max", "avg"], "activation": ["None", "relu", "abs"]}
        if column in choices:
            return w.Dropdown(options=choices[column], value=value, layout=lay)
        if column in ("wide", "use_bias"):
            return w.Checkbox(value=value, indent=False, layout=lay)
        return w.Text(value=str(value), layout=lay, continuous_update=False)

    def _make_row(self, index):
        w = self._w
        values = self.table.column_values(index)
        entry = {}
        cells = []
        for column, _, _ in GRID:
            if column == "index":
                cell = w.HTML(str(index), layout=self._cell_layout())
            elif column == "buttons":
                buttons = []
                for action, icon, tip in BUTTONS:
                    button = w.Button(icon=icon, tooltip=tip,
                                      layout=w.Layout(width="26px", min_width="26px",
                                                      margin="0px 1px", padding="0px"))
                    button.on_click(self._on_button(entry, action))
                    entry[action] = button
                    buttons.append(button)
                cell = w.HBox(buttons, layout=self._cell_layout())
            elif column == "status":
                cell = w.HTML(layout=self._cell_layout())
                cell.add_class("ai8x-row-status")
                entry["status"] = cell
            elif column == "cycles":
                cell = w.HTML(layout=self._cell_layout())
                cell.add_class("ai8x-row-cycles")
                entry["cycles"] = cell
            else:
                cell = self._cell(column, values[column])
                cell.disabled = not self.table.column_enabled(index, column)
                cell.observe(self._on_change(entry, column), names="value")
                entry[column] = cell
            cell.add_class(f"ai8x-col-{column}")
            cells.append(cell)
        box = self._grid(cells)
        box.add_class("ai8x-layer-row")
        entry.update(box=box, index=index)
        return entry

    def _rebuild(self):
        self._busy = True
        try:
            shown = self._shown_columns()
            if shown != self._shown:  # a column appears or goes: the header follows
                self._shown = shown
                template, min_width = grid_tracks(shown)
                for key, cell in self._header_cells.items():
                    cell.layout.display = None if key in shown else "none"
                self._header.layout.grid_template_columns = template
                self._header.layout.min_width = min_width
                self.rows_box.layout.min_width = min_width
            self.rows = [self._make_row(i) for i in range(len(self.table))]
            self.rows_box.children = [entry["box"] for entry in self.rows]
        finally:
            self._busy = False
        self._show()

    def _sync_row(self, index):
        """Push a row's (normalised) values back into its widgets without firing events."""
        entry, values = self.rows[index], self.table.column_values(index)
        row = self.table.row(index)
        self._busy = True
        try:
            for column in COLUMNS:
                if column in ("type", "other"):
                    continue
                widget = entry[column]
                field = column if column != "size" else (
                    "units" if row["type"] == "dense" else "filters")
                if isinstance(row.get(field), str):
                    continue  # a typed "3.5" stays as typed, with its error in the row
                value = str(values[column]) if isinstance(widget, self._w.Text) \
                    else values[column]
                if widget.value != value:
                    widget.value = value
                if column in ("pool_size", "pool_strides", "pool_dilation"):
                    widget.disabled = not self.table.column_enabled(index, column)
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
        self._rebuild()

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
