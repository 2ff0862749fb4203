"""Data sets made or shipped by the course (nothing is downloaded).

* :class:`SortOfClevr`: the Relation Networks paper's visual QA set, regenerated, with
  natural-language questions.
* :class:`AVDigits`: handwritten digit images paired with spoken digits.
* :class:`TensorBatches`: batches straight from tensors, with no per-sample Python.
"""

from .av_digits import AVDigits, AVDigitsConfig
from .batching import Curriculum, TensorBatches
from .sort_of_clevr import SortOfClevr, SortOfClevrConfig

__all__ = ["SortOfClevr", "SortOfClevrConfig", "AVDigits", "AVDigitsConfig", "TensorBatches", "Curriculum"]
