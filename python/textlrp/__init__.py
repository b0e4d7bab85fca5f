"""textlrp: explain LSTM text classifiers word by word with Layer-wise Relevance Propagation.

    >>> import textlrp
    >>> model = textlrp.load_model()                 # the bundled SST-5 BiLSTM
    >>> exp = model.explain("don't waste your money")
    >>> exp.tokens, exp.relevance, exp.prediction_name

The method is that of Arras et al., "Explaining Recurrent Neural Network Predictions in
Sentiment Analysis" (WASSA 2017); the numerics run in a compiled C++ core.
"""

from __future__ import annotations

from typing import Any

from .explanation import Explanation, ExplanationError, Prediction
from .io import load_model
from .methods import METHODS, RULES
from .model import Encoding, Model, from_arrays
from .tokenize import tokenize
from .vocab import Vocabulary

# The one place the version is written: pyproject.toml reads it from here (scikit-build-core
# regex provider), so the installed metadata and textlrp.__version__ cannot disagree.
__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "RULES",
    "Encoding",
    "Explanation",
    "ExplanationError",
    "Model",
    "Prediction",
    "Vocabulary",
    "from_arrays",
    "from_keras",
    "from_torch",
    "load_model",
    "tokenize",
]


def from_torch(embedding: Any, rnn: Any, head: Any, **kwargs: Any) -> Model:
    """Build a Model from an ``nn.Embedding`` (or None for continuous inputs), an ``nn.LSTM``
    or ``nn.GRU``, and a head (``nn.Linear`` or ``nn.Sequential`` of Linear/ReLU/Dropout);
    ``pooling="last" | "mean" | "max" | textlrp.nn.AdditiveAttention(...)``. Needs the
    ``torch`` extra; importing textlrp never imports torch."""
    from .torch_import import from_torch as _from_torch

    return _from_torch(embedding, rnn, head, **kwargs)


def from_keras(model_or_path: Any, vocab: Any = None, class_names: Any = None,
               **kwargs: Any) -> Model:
    """Build a Model from a Keras 3 model: the path of a ``.keras`` file (read with json and
    h5py, never executing code from the file) or a live ``keras.Model``. Embedding or
    continuous inputs, LSTM/GRU/Bidirectional layers, last-state or global average/max
    pooling, a Dense head; the scores are those before a final softmax/sigmoid. Anything
    textlrp cannot compute exactly is refused naming the layer and the setting (docs/keras.md).
    Keyword arguments: ``unk_token``, ``lowercase``, ``dtype``, ``metadata``. Importing textlrp
    never imports Keras or h5py."""
    from .keras_import import from_keras as _from_keras

    return _from_keras(model_or_path, vocab, class_names, **kwargs)
