"""Whole-corpus analysis of a model's explanations (``textlrp analyze``).

    >>> import textlrp
    >>> from textlrp.analysis import analyze
    >>> model = textlrp.load_model()
    >>> result = analyze(model, open("reviews.txt"), clusters=None)
    >>> result.flagged                      # Clever-Hans suspects, with the reason
    >>> result.to_dict()["classes"]         # words for and against each class
    >>> open("report.html", "w").write(result.to_html())

Three parts (each documented in its module and in docs/analysis.md): word statistics per
class streamed in constant memory (:mod:`.stats`), Spectral Relevance Analysis of the
explanations (:mod:`.spray`, needs the ``analysis`` extra: scipy, scikit-learn, matplotlib
for the report's plots), and the Clever-Hans check (:mod:`.flags`).
"""

from .core import Analysis, AnalysisError, Row, analyze, analyze_rows
from .stats import PRIOR_COUNT, Sample, WordStats

__all__ = ["PRIOR_COUNT", "Analysis", "AnalysisError", "Row", "Sample", "WordStats", "analyze",
           "analyze_rows"]
