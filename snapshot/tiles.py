"""Sprite sheet geometry (docs/contract.md#sprite-sheets): which snapshot goes in which cell, where."""

from __future__ import annotations

from dataclasses import dataclass

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.images import MAX_SIDE
from snapshot.limits import Limits
from snapshot.spec import TileSpec


@dataclass(frozen=True)
class Cell:
    sheet: int  # 1-based, the {TileCount} of its sheet
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class SheetLayout:
    tile: TileSpec
    cell_width: int
    cell_height: int

    @property
    def per_sheet(self) -> int:
        return self.tile.lines * self.tile.columns

    def cell_index(self, seq: int) -> int | None:
        """The 0-based cell of the `seq`-th snapshot, or None when CellSelStep skips it."""
        index, rest = divmod(seq - 1, self.tile.cell_step)
        return None if rest else index

    def cell_of(self, seq: int) -> Cell:
        """The cell of the `seq`-th snapshot, one that CellSelStep keeps."""
        index = self.cell_index(seq)
        if index is None:
            raise ValueError(f"snapshot {seq} has no cell")
        return self.cell(index)

    def cell(self, index: int) -> Cell:
        sheet, place = divmod(index, self.per_sheet)
        row, column = divmod(place, self.tile.columns)
        step_x, step_y = self.cell_width + self.tile.padding, self.cell_height + self.tile.padding
        return Cell(
            sheet + 1,
            self.tile.margin + column * step_x,
            self.tile.margin + row * step_y,
            self.cell_width,
            self.cell_height,
        )

    def sheet_count(self, cells: int) -> int:
        return -(-cells // self.per_sheet)

    def sheet_size(self, sheet: int, cells: int) -> tuple[int, int]:
        """Pixel size of sheet `sheet` (1-based) of `cells` cells: every sheet has all its
        columns; the last one only the lines it fills."""
        on_sheet = min(self.per_sheet, cells - (sheet - 1) * self.per_sheet)
        lines = -(-on_sheet // self.tile.columns)
        return self._extent(self.tile.columns, self.cell_width), self._extent(lines, self.cell_height)

    def _extent(self, count: int, cell: int) -> int:
        return 2 * self.tile.margin + count * cell + (count - 1) * self.tile.padding


def layout(
    tile: TileSpec,
    snapshot_size: tuple[int, int],
    max_pixels: int = Limits.max_sheet_pixels,
    image_format: str = "JPEG",
) -> SheetLayout:
    """The layout for snapshots of `snapshot_size`, on sheets of `image_format`. A cell
    defaults to the snapshot size; with only CellWidth or CellHeight given, the other keeps
    the snapshot's aspect. Sheets larger than the format can hold are refused here, before
    any capture."""
    width, height = snapshot_size
    cell_width, cell_height = tile.cell_width, tile.cell_height
    if cell_width and not cell_height:
        cell_height = max(1, round(cell_width * height / width))
    elif cell_height and not cell_width:
        cell_width = max(1, round(cell_height * width / height))
    result = SheetLayout(tile, cell_width or width, cell_height or height)
    full = result.sheet_size(1, result.per_sheet)
    if max(full) > MAX_SIDE[image_format]:
        raise SnapshotError(
            errors.INVALID_PARAMETER,
            f"SnapshotConfig.TileOut makes sheets of {full[0]}x{full[1]} px; {image_format} allows at most "
            f"{MAX_SIDE[image_format]} px a side (fewer Lines/Columns or smaller cells)",
        )
    if full[0] * full[1] > max_pixels:
        raise SnapshotError(
            errors.INVALID_PARAMETER,
            f"SnapshotConfig.TileOut makes sheets of {full[0]}x{full[1]} px, over the cap of "
            f"{max_pixels} pixels a sheet",
        )
    return result
