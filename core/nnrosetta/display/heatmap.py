"""`Heatmap`: one labelled grid of values, written as self-contained HTML (plotly) or PNG (matplotlib).

Both plots nnrosetta draws (logit lens, patching effects) are a grid of layers
by token positions; keeping the data in one object lets both writers show the
same cells, labels and colours, and lets tests read what was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from ..errors import InvalidInputError, ShapeError
from .extras import require

#: Pixels per cell in the HTML figure and inches per cell in the PNG.
HTML_CELL_PX = (70, 36)
PNG_CELL_IN = (0.9, 0.45)


@dataclass(frozen=True)
class Heatmap:
    """A (rows, columns) grid: ``values`` give the colour, ``cell_text`` (optional) is written in each cell.

    Row 0 is drawn at the bottom, so layer 0 sits under the later layers.
    ``diverging`` centres the colour scale on zero (patching effects can be negative).
    """

    values: torch.Tensor
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    title: str = ""
    cell_text: Optional[tuple[tuple[str, ...], ...]] = None
    colorbar_title: str = ""
    diverging: bool = False
    row_title: str = "layer"
    column_title: str = "token position"

    def __post_init__(self) -> None:
        values = torch.as_tensor(self.values).detach().float().cpu()
        rows, columns = len(self.row_labels), len(self.column_labels)
        if values.shape != (rows, columns):
            raise ShapeError(
                f"heatmap values have shape {tuple(values.shape)} but there are {rows} row labels and "
                f"{columns} column labels; give one label per row and per column."
            )
        if self.cell_text is not None and (
            len(self.cell_text) != rows or any(len(row) != columns for row in self.cell_text)
        ):
            raise ShapeError(f"cell_text must be {rows} rows of {columns} strings, like the values.")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "row_labels", tuple(self.row_labels))
        object.__setattr__(self, "column_labels", tuple(self.column_labels))

    def _range(self) -> tuple[float, float]:
        if self.diverging:
            bound = float(self.values.abs().max()) or 1.0
            return -bound, bound
        return float(self.values.min()), float(self.values.max())

    def to_plotly(self):
        """A plotly Figure of the grid (columns by index, labelled, so repeated tokens stay apart)."""
        go = require("plotly.graph_objects")
        low, high = self._range()
        rows, columns = self.values.shape
        heatmap = go.Heatmap(
            z=self.values.tolist(),
            x=list(range(columns)),
            y=list(range(rows)),
            text=[list(row) for row in self.cell_text] if self.cell_text else None,
            texttemplate="%{text}" if self.cell_text else None,
            colorscale="RdBu" if self.diverging else "Blues",
            reversescale=self.diverging,
            zmin=low,
            zmax=high,
            colorbar={"title": {"text": self.colorbar_title}},
            hovertemplate="%{y}, %{x}: %{z:.4f}<extra></extra>",
        )
        figure = go.Figure(heatmap)
        figure.update_layout(
            title=self.title,
            width=max(500, 160 + HTML_CELL_PX[0] * columns),
            height=max(350, 160 + HTML_CELL_PX[1] * rows),
            xaxis={"title": self.column_title, "tickmode": "array", "tickvals": list(range(columns)),
                   "ticktext": list(self.column_labels)},
            yaxis={"title": self.row_title, "tickmode": "array", "tickvals": list(range(rows)),
                   "ticktext": list(self.row_labels)},
        )
        return figure

    def to_matplotlib(self):
        """A matplotlib Figure of the grid, drawn with the Agg backend (no display needed)."""
        require("matplotlib")
        from matplotlib.figure import Figure

        rows, columns = self.values.shape
        figure = Figure(figsize=(2.5 + PNG_CELL_IN[0] * columns, 1.5 + PNG_CELL_IN[1] * rows))
        axes = figure.add_subplot()
        low, high = self._range()
        image = axes.imshow(
            self.values.numpy(), cmap="RdBu_r" if self.diverging else "Blues", vmin=low, vmax=high,
            origin="lower", aspect="auto",
        )
        figure.colorbar(image, ax=axes, label=self.colorbar_title)
        axes.set_xticks(range(columns), labels=list(self.column_labels), rotation=45, ha="right")
        axes.set_yticks(range(rows), labels=list(self.row_labels))
        axes.set_xlabel(self.column_title)
        axes.set_ylabel(self.row_title)
        axes.set_title(self.title)
        if self.cell_text:
            middle = (low + high) / 2
            for row in range(rows):
                for column in range(columns):
                    dark = self.values[row, column] > middle if not self.diverging else abs(self.values[row, column]) > high / 2
                    axes.text(column, row, self.cell_text[row][column], ha="center", va="center", fontsize=7,
                              color="white" if dark else "black")
        figure.tight_layout()
        return figure

    def to_html(self, path: Union[str, Path]) -> Path:
        """Write a self-contained HTML file (plotly.js inlined: opens offline)."""
        path = Path(path)
        self.to_plotly().write_html(str(path), include_plotlyjs=True, full_html=True)
        return path

    def to_png(self, path: Union[str, Path], dpi: int = 120) -> Path:
        """Write a PNG image."""
        path = Path(path)
        self.to_matplotlib().savefig(str(path), dpi=dpi)
        return path

    def save(self, path: Union[str, Path]) -> Path:
        """Write HTML or PNG, chosen by the file's suffix."""
        suffix = Path(path).suffix.lower()
        if suffix in (".html", ".htm"):
            return self.to_html(path)
        if suffix == ".png":
            return self.to_png(path)
        raise InvalidInputError(f"cannot write a heatmap to {str(path)!r}: use a .html or .png file name.")


def token_label(text: str) -> str:
    """A token as readable text in one cell: spaces shown as '·', other invisible characters escaped."""
    shown = "".join(
        "·" if char == " " else char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
    return shown or "∅"


def labels(texts: Sequence[str]) -> tuple[str, ...]:
    return tuple(token_label(t) for t in texts)
