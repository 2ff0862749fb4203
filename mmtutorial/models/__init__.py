"""Full models built from the package's encoders and fusion modules."""

from .av_fusion import FUSIONS, AVFusionClassifier

__all__ = ["AVFusionClassifier", "FUSIONS"]
