"""reaxgrad.datasets: training-data readers (ReaxFF ``geo`` files, ...)."""

from .geo import GeoError, read_geo, reaxff_cell

__all__ = ["GeoError", "read_geo", "reaxff_cell"]
