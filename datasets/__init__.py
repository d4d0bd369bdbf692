"""reaxgrad.datasets: training data in and out: ReaxFF ``geo`` files and ``trainset.in``
(readers with named errors, writers), and DFT data from extxyz files and ASE databases."""

from .dft import DatasetError, read_dft
from .geo import GeoError, read_geo, reaxff_cell
from .geo_write import write_geo
from .trainset import CATEGORIES, TrainingSet, TrainItem, TrainsetError, read_trainset
from .trainset_write import write_trainset

__all__ = ["CATEGORIES", "DatasetError", "GeoError", "TrainItem", "TrainingSet",
           "TrainsetError", "read_dft", "read_geo", "read_trainset", "reaxff_cell",
           "write_geo", "write_trainset"]
