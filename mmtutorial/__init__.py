"""mmtutorial: attention for multimodal fusion, taught in notebooks.

Modules:
    attention  masked softmax, scoring functions, attention modules
    notebook   parameter validation, smoke mode and metrics for the notebooks
    train      seeding and device selection
    viz        attention heatmaps and the course's plot style
    checks     self-checks for the exercises
"""

__version__ = "0.1.0"
