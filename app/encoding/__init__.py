"""Sentence encoders: text to float32 vectors with a BERT-family model.

``BertEncoder`` lives in ``app.encoding.bert`` and imports torch; import it from there, so that
importing this package (the registry, the pooling names) stays light.
"""

from __future__ import annotations
