"""PC-side tools: data, training, export, evaluation, benchmarks and figures. They import deblurd, never the reverse."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""The repository root: models/, reports/, data/ and runs/ are found from here."""
