"""pcfrl-bench: reproducibility harness for pose-aware contrastive facial representation learning."""

__version__ = "0.1.0"
