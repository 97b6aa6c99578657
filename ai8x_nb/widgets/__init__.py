"""Notebook widgets: the layer editor and the live training plot.

`LayerEditor` needs ipywidgets (imported when an editor is created) and binds them to an
`ai8x_nb.spec_table.SpecTable`, which edits and checks the spec without widgets; both also
render as static matplotlib figures, so headless runs and GitHub show something.
"""

from ai8x_nb.widgets.layer_editor import CSS_CLASS, GRID, EditorRowError, LayerEditor
from ai8x_nb.widgets.live_plot import LivePlot

__all__ = ["CSS_CLASS", "GRID", "EditorRowError", "LayerEditor", "LivePlot"]
