"""Interactive explorers: move a slider instead of editing a cell.

Each notebook calls its explorer in one line; displayed (the last expression of a cell)
in JupyterLab it is a live widget (ipywidgets), displayed in a headless run
(``MMTUTORIAL_STATIC_WIDGETS=1``, which the notebook runner sets) a static figure of its
first setting (:mod:`.base` holds the switch). Every explorer is tested without a browser
by driving its controls.

* :func:`explore_soft_lookup` (notebook 01): a query over fixed keys, temperature and top-k;
* :func:`explore_scaling` (notebook 02): the vector size d and the 1/sqrt(d) scaling,
  the softmax's saturation;
* :func:`explore_sparse_patterns` (notebook 05): sliding window, global tokens and block
  patterns, their mask and measured cost;
* :func:`explore_missing_modalities` (notebook 08): drop or corrupt a modality, every fusion
  model's prediction and the gate's weights;
* :func:`explore_vqa` (notebooks 06 and 09): an image, a typed question, the answer and the
  attention of every hop over the image.
"""

from .base import STATIC_WIDGETS_ENV, Explorer, static_widgets
from .missing import MissingModalityExplorer, explore_missing_modalities
from .scaling import ScalingExplorer, explore_scaling
from .soft_lookup import SoftLookupExplorer, explore_soft_lookup
from .sparse import SparsePatternExplorer, explore_sparse_patterns
from .vqa import VQAExplorer, explore_vqa

__all__ = [
    "STATIC_WIDGETS_ENV",
    "Explorer",
    "static_widgets",
    "SoftLookupExplorer",
    "explore_soft_lookup",
    "ScalingExplorer",
    "explore_scaling",
    "SparsePatternExplorer",
    "explore_sparse_patterns",
    "MissingModalityExplorer",
    "explore_missing_modalities",
    "VQAExplorer",
    "explore_vqa",
]
