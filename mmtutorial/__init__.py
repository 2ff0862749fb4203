"""mmtutorial: attention for multimodal fusion, taught in notebooks.

The package has three layers (ARCHITECTURE.md tells the whole story):

**What the course teaches** (built from scratch in a notebook, then imported here)
    attention   masked softmax, scores, attention modules, positional encodings, the
                Transformer block, sparse attention with FlexAttention
    fusion      early/late/hybrid, gated, tokens, FiLM, tensor, bilinear, cross-/co-/multi-hop
                attention, modality dropout
    encoders    image (region CNN, ResNet-18 trunk, digits), audio (spectrograms), text
                (GRU/Transformer from scratch, pretrained MiniLM)
    models      full models: the AV-Digits fusion classifier, the VQA model and its training
    data        Sort-of-CLEVR, AV-Digits, tokenizers and tensor batches

**Training infrastructure**
    training    runtime (seeding, devices, progress bars), the fit/evaluate loops,
                checkpoints, torchrun/DDP helpers, benchmarking

**The course machinery**
    course      the learning path, notebook plumbing (parameters, smoke mode, metrics),
                exercise self-checks, plots, classroom editions and the course site
    experiments notebooks as experiments: headless runs, sweeps (local or on Dask), reports

**Shared utilities** (leaf modules every layer may use)
    validation  one-line errors for bad input: ``name=value: expected ...``
    outputs     output folders nothing can lose, atomic writes
    cli         one-line command-line errors and checked argument types
"""

__version__ = "0.1.0"
