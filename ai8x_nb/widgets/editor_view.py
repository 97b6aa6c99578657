"""How a `SpecTable` looks: row descriptions, status and budget HTML, a text table, a figure.

Pure functions of the table's state, shared by the live editor (HTML) and its static forms
(text and a matplotlib figure, for headless runs and GitHub).
"""

import re

from ai8x_nb import plots
from ai8x_nb import spec as specs

__all__ = ["escape", "shape_text", "describe", "summary_text", "text_table", "figure",
           "status_html", "summary_html", "budget_html", "latency_html", "latency_text"]


def escape(text):
    """`text` with &, < and > escaped for HTML."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shape_text(shape):
    """(28, 28, 60) -> "28x28x60"; "?" for no shape."""
    return "x".join(str(s) for s in shape) if shape else "?"


def describe(row):
    """A row in a few words, e.g. "maxpool 2/2 + 60 k3 p2 relu no-bias"."""
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
        text = shape_text(row["target_shape"])
    else:
        text = ""
    if row.get("wide"):
        text += " wide"
    if kind in specs.CONV_TYPES + ("dense",) and not row.get("use_bias"):
        text += " no-bias"
    return text


def _result(table, index):
    return table.results[index] if index < len(table.results) else (True, "", None, 0)


def summary_text(table):
    """One line: rows, parameters, input, device, and what is wrong (or OK)."""
    stop = table.first_bad
    params = (f"{table.parameters:,} parameters" if stop is None
              else f"{table.parameters:,} parameters above row {stop}")
    text = (f"{len(table)} rows, {params}, input {shape_text(table.input_shape)}, "
            f"device {table.device}")
    if table.bad_rows:
        return text + f": errors in row(s) {', '.join(map(str, table.bad_rows))}"
    if table.report is not None and not table.report.ok:
        return text + f": {len(table.report.errors)} device error(s)"
    return text + (": OK" if table.report is not None else "")


def latency_text(table):
    """The model's latency line (the synthesis tool's estimate), or "" before a device check."""
    totals = table.report.totals if table.report is not None else {}
    if totals.get("latency_cycles") is None:
        return ""
    label = " (estimate: MAX78000 formula)" if totals.get("latency_estimate") else ""
    return (f"latency {totals['latency_cycles']:,} cycles = {totals['latency_us']:,.1f} us at "
            f"{totals['clock_mhz']:g} MHz{label}")


def _row_state(table, index):
    """(ok, text) of one row: its shape and parameters, its error, or why it is unknown."""
    ok, message, shape, params = _result(table, index)
    stop = table.first_bad
    if not ok:
        return False, message
    if stop is not None and index > stop:
        return None, f"? (row {stop} first)"
    errors = table.device_errors().get(index)
    if errors:
        return False, errors[0]
    return True, f"{shape_text(shape)}  {params:,} params"


def text_table(table):
    """The summary line, one line per row (output shape and parameters, or the error; its
    cycles), and the latency."""
    lines = [summary_text(table)]
    cycles = table.row_cycles()
    for i, row in enumerate(table.spec):
        ok, state = _row_state(table, i)
        state = state if ok is not False else f"ERROR {state}"
        if ok and cycles[i]:
            state += f"  {cycles[i]:,} cycles"
        lines.append(f"{i:>3} {row['type']:<16} {describe(row):<34} {state}")
    if latency_text(table):
        lines.append(latency_text(table))
    return "\n".join(lines)


def figure(table):
    """A static matplotlib figure: the layer table and, when the model checks, the budget bars."""
    from matplotlib.figure import Figure

    rows = table.spec
    has_budget = bool(table.budget())
    table_height = 0.24 * (len(rows) + 2)
    fig = Figure(figsize=(11, table_height + (2.6 if has_budget else 0.4)),
                 layout="constrained")
    if has_budget:
        table_ax, bar_ax = fig.subplots(2, 1, height_ratios=[table_height, 2.6])
    else:
        table_ax, bar_ax = fig.subplots(), None
    table_ax.axis("off")
    cells, colors = [], []
    for i, row in enumerate(rows):
        ok, message, shape, params = _result(table, i)
        ok, state = _row_state(table, i)
        known = ok is True
        cells.append([str(i), row["type"], describe(row), shape_text(shape) if known else "?",
                      f"{params:,}" if known else "?",
                      "ok" if known else (state[:70] + ("..." if len(state) > 70 else ""))])
        colors.append(["white"] * 5 + [{True: "#eaf6ea", False: "#fbe3e3", None: "#eeeeee"}[ok]])
    if cells:
        drawn = table_ax.table(cellText=cells, cellColours=colors, loc="center",
                               colLabels=["#", "type", "config", "output", "params", "status"],
                               cellLoc="left")
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(8)
        drawn.auto_set_column_width(list(range(6)))
    table_ax.set_title(summary_text(table), fontsize=9, loc="left")
    if bar_ax is not None:
        plots.draw_budget(bar_ax, table.report)
    return fig


def status_html(result, device_errors=None, waits_for=None):
    """A row's status cell: "-> shape . params" in green, or its error in red.

    Args:
        result: the row's `(ok, message, shape, params)`.
        device_errors: the device check's errors naming this row (shown in red).
        waits_for: the first row in error above this one: its shape is unknown until then.
    """
    ok, message, shape, params = result
    if ok and device_errors:
        ok, message = False, device_errors[0]
    if not ok:
        message = re.sub(r"^Model spec row \d+ \([^)]*\): ", "", message)  # the row says it
        return (f"<span class='ai8x-row-error' style='color:#c00;white-space:normal'>"
                f"{escape(message)}</span>")
    if waits_for is not None:
        return (f"<span style='color:#888;white-space:normal'>? shape and parameters once row {waits_for} "
                f"is fixed</span>")
    return (f"<span style='color:#2a7a2a;white-space:normal'>&rarr; {shape_text(shape)} &middot; "
            f"{params:,} params</span>")


def summary_html(table):
    """The summary line, then the device check's errors (each naming its row) and warnings."""
    lines = [f"<b>{escape(summary_text(table))}</b>"]
    if table.report is not None:
        for row, errors in table.device_errors().items():
            where = f"row {row}: " if row is not None else ""
            for err in errors:
                lines.append(f"<div class='ai8x-row-error' style='color:#c00'>"
                             f"{escape(where + err)}</div>")
        for warn in table.report.warnings:
            lines.append(f"<div style='color:#a60'>{escape(warn)}</div>")
    if table.check_error:
        lines.append(f"<div style='color:#c00'>model check failed: "
                     f"{escape(table.check_error)}</div>")
    return "".join(lines)


def latency_html(cycles, table):
    """A row's latency cell: a bar of its share of the model's cycles and the number."""
    total = (table.report.totals.get("latency_cycles") if table.report is not None else None)
    if not cycles or not total:
        return ""
    pct = 100.0 * cycles / total
    return ("<span style='display:flex;align-items:center;gap:4px'>"
            "<span style='width:30px;height:10px;background:#eee;display:inline-block;flex:none'>"
            f"<span style='width:{pct:.1f}%;height:10px;background:#9467bd;"
            f"display:block'></span></span><span>{cycles:,}</span></span>")


def budget_html(table):
    """Memory bars (layers, weights, bias, data) of the device check, or why there are none."""
    if table.report is None:
        return "<i>Memory budget: fix the rows in red first.</i>" if len(table) else ""
    parts = [f"<div class='ai8x-budget'><b>Memory budget on {escape(table.device)}</b>"]
    if not table.report.ok:
        parts.append("<div style='color:#a60'>The model does not fit (errors above): the "
                     "bars count the layers that were placed, not what the model needs.</div>")
    for label, used, limit, unit in table.budget():
        pct = 100.0 * used / limit
        color = "#d62728" if pct > 100 else ("#ff7f0e" if pct > 85 else "#1f77b4")
        parts.append(
            "<div style='display:flex;align-items:center;gap:8px;margin:2px 0'>"
            f"<span style='width:170px'>{label}</span>"
            "<span style='width:300px;height:12px;background:#eee;display:inline-block'>"
            f"<span style='width:{min(pct, 100):.1f}%;height:12px;background:{color};"
            "display:inline-block'></span></span>"
            f"<span>{int(used):,} / {int(limit):,} {unit} ({pct:.1f} %)</span></div>")
    if latency_text(table):
        parts.append(f"<div class='ai8x-latency'><b>{escape(latency_text(table))}</b> "
                     f"(as the synthesis tool estimates it; per row in the cycles column)"
                     f"</div>")
    parts.append("</div>")
    return "".join(parts)

