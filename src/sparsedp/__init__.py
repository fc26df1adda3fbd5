"""sparsedp: data parallelism in training networks pruned at initialization."""

__version__ = "0.1.0"
