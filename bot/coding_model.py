"""A small statistical text model that backs up the rule coder in bot/coding.py.

The rules are precise but only know the wording their author thought of; a new author's
phrasing ("the hall's damp" vs "damp in the building") slips through. This module learns, from
the labelled answers shipped with the codebook, one logistic regression per code over TF-IDF
features: word 1-2-grams and character 3-5-grams within words (which tolerate typos and
inflections). Its codes are combined with the rules' codes in ``bot.coding`` (union, with rule
negation able to veto), and every model code carries the words that pushed it up.

Featurisation is written out here rather than taken from scikit-learn's vectorisers, for
speed: character n-grams are computed once per distinct word and cached, so a batch of
answers costs a dictionary look-up per word plus a few vectorised numpy operations. That keeps
the combined coder above 5,000 answers/s on one core. The logistic regressions are fitted with
scipy's L-BFGS (importing scikit-learn alone would take longer than the whole fit).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

__all__ = ["TextModel", "fit_model", "load_model", "model_digest", "save_model", "tokens_of"]

# Words: letters/digits with an inner apostrophe ("don't"), lower-cased by the caller.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
CHAR_RANGE = (3, 5)
MIN_DF = 2  # a feature must occur in at least two training answers
C_REG = 4.0  # inverse L2 strength of the logistic regressions
SHORT_WORDS = 6  # defaults for TextModel.short_words / short_threshold
SHORT_THRESHOLD = 0.7
CACHE_MAX = 200_000


def tokens_of(norm: str) -> list[tuple[int, int, str]]:
    """(start, end, key) per word of a lower-cased text; the key drops apostrophes."""
    return [(m.start(), m.end(), m.group().replace("'", "")) for m in _WORD.finditer(norm)]


def _char_grams(word: str) -> list[str]:
    padded = f" {word} "
    lo, hi = CHAR_RANGE
    return [padded[i : i + n] for n in range(lo, hi + 1) for i in range(len(padded) - n + 1)]


def _word_grams(keys: Sequence[str]) -> list[str]:
    return [*keys, *(f"{a} {b}" for a, b in pairwise(keys))]


@dataclass
class TextModel:
    """Fitted weights plus the vocabularies needed to featurise new answers."""

    codes: tuple[str, ...]
    word_vocab: dict[str, int]  # word 1-2-gram -> column
    char_vocab: dict[str, int]  # char n-gram -> column (offset by len(word_vocab))
    idf: np.ndarray
    coef: np.ndarray  # (n_features, n_codes)
    intercept: np.ndarray  # (n_codes,)
    threshold: float = 0.5
    near: float = 0.15  # a model-only code below threshold + near is doubtful
    # In an answer of at most ``short_words`` words a model code needs ``short_threshold``:
    # short generic answers ("we're always the last to know") otherwise pick up codes from a
    # word or two. Chosen by leave-one-set-out on the seen sets (bench/coding_bench.py).
    short_words: int = 0
    short_threshold: float = 1.0
    _char_cache: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _coef_t_cache: np.ndarray | None = field(default=None, repr=False)

    @property
    def _coef_t(self) -> np.ndarray:
        if self._coef_t_cache is None:
            self._coef_t_cache = np.ascontiguousarray(self.coef.T)
        return self._coef_t_cache

    # ------------------------------------------------------------------ features

    def _char_ids(self, word: str) -> tuple[int, ...]:
        hit = self._char_cache.get(word)
        if hit is None:
            vocab = self.char_vocab
            hit = tuple(vocab[g] for g in _char_grams(word) if g in vocab)
            if len(self._char_cache) < CACHE_MAX:
                self._char_cache[word] = hit
        return hit

    def rows(
        self, token_lists: Sequence[Sequence[str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TF-IDF rows (sublinear tf, each block l2-normalised) for tokenised answers, as CSR
        arrays (indptr, column indices sorted within each row, values), in numpy alone."""
        wv = self.word_vocab
        cache = self._char_cache
        cols: list[int] = []
        indptr = [0]
        for keys in token_lists:
            for g in _word_grams(keys):
                j = wv.get(g)
                if j is not None:
                    cols.append(j)
            for w in keys:
                ids = cache.get(w)
                if ids is None:
                    ids = self._char_ids(w)
                cols.extend(ids)
            indptr.append(len(cols))
        n_rows = len(token_lists)
        n_feat = len(self.idf)
        row_of = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
        # Sum duplicates: one entry per (row, column), sorted like a canonical CSR matrix.
        keys_, counts = np.unique(row_of * n_feat + np.asarray(cols, dtype=np.int64),
                                  return_counts=True)  # fmt: skip
        row_of = keys_ // n_feat
        col = keys_ - row_of * n_feat
        data = (1.0 + np.log(counts)) * self.idf[col]
        # l2-normalise the word block and the char block separately, like a FeatureUnion.
        is_char = col >= len(wv)
        sq = data * data
        norm_w = np.sqrt(np.bincount(row_of[~is_char], sq[~is_char], minlength=n_rows))
        norm_c = np.sqrt(np.bincount(row_of[is_char], sq[is_char], minlength=n_rows))
        norm_w[norm_w == 0] = 1.0
        norm_c[norm_c == 0] = 1.0
        data /= np.where(is_char, norm_c[row_of], norm_w[row_of])
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=n_rows), out=ptr[1:])
        return ptr, col, data

    def features(self, token_lists: Sequence[Sequence[str]]):  # -> scipy.sparse.csr_matrix
        """The rows of ``rows`` as a scipy CSR matrix (used by the fit only)."""
        from scipy.sparse import csr_matrix

        ptr, col, data = self.rows(token_lists)
        return csr_matrix((data, col, ptr), shape=(len(token_lists), len(self.idf)))

    # ------------------------------------------------------------------ prediction

    def proba(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """(n_answers, n_codes) probabilities."""
        if not token_lists:
            return np.zeros((0, len(self.codes)))
        ptr, col, data = self.rows(token_lists)
        z = np.tile(self.intercept, (len(token_lists), 1))
        full = np.diff(ptr) > 0
        if full.any():
            starts = ptr[:-1][full]
            # Per answer and code, the sum of weight x value over the answer's features; each
            # answer's sum is taken on its own, so batching never changes a result.
            for j in range(len(self.codes)):
                z[full, j] += np.add.reduceat(self._coef_t[j][col] * data, starts)
        return 1.0 / (1.0 + np.exp(-z))

    def top_words(
        self, tokens: Sequence[tuple[int, int, str]], code: str, k: int = 3
    ) -> list[tuple[int, int, float]]:
        """Spans of the (at most k) words that contributed most to ``code`` for this answer.

        A word's contribution is the sum of weight x feature value over its unigram, half of
        each bigram it is in, and its character n-grams.
        """
        j = self.codes.index(code)
        keys = [t[2] for t in tokens]
        _ptr, col, data = self.rows([keys])
        val = dict(zip(col.tolist(), data.tolist(), strict=True))
        w = self.coef[:, j]
        wv = self.word_vocab
        contrib = [0.0] * len(keys)
        char_ids = [set(self._char_ids(key)) for key in keys]
        shared: dict[int, int] = {}  # a char n-gram in several words is shared out between them
        for ids in char_ids:
            for c in ids:
                shared[c] = shared.get(c, 0) + 1
        for i, key in enumerate(keys):
            c = wv.get(key)
            if c is not None:
                contrib[i] += w[c] * val[c]
            if i + 1 < len(keys):
                c = wv.get(f"{key} {keys[i + 1]}")
                if c is not None:
                    half = 0.5 * w[c] * val[c]
                    contrib[i] += half
                    contrib[i + 1] += half
            contrib[i] += sum(w[c] * val[c] / shared[c] for c in char_ids[i])
        best = sorted(range(len(keys)), key=lambda i: -contrib[i])[:k]
        return [(tokens[i][0], tokens[i][1], contrib[i]) for i in best if contrib[i] > 0]


def _vocab(token_lists: Sequence[Sequence[str]]) -> tuple[dict[str, int], dict[str, int]]:
    wdf: dict[str, int] = {}
    cdf: dict[str, int] = {}
    for keys in token_lists:
        for g in set(_word_grams(keys)):
            wdf[g] = wdf.get(g, 0) + 1
        for g in {g for w in keys for g in _char_grams(w)}:
            cdf[g] = cdf.get(g, 0) + 1
    words = sorted(g for g, n in wdf.items() if n >= MIN_DF)
    chars = sorted(g for g, n in cdf.items() if n >= MIN_DF)
    return {g: i for i, g in enumerate(words)}, {g: i + len(words) for i, g in enumerate(chars)}


def fit_model(
    token_lists: Sequence[Sequence[str]],
    labels: Sequence[frozenset[str] | set[str]],
    codes: Sequence[str],
    threshold: float = 0.5,
) -> TextModel:
    """Fit one class-balanced, L2-regularised logistic regression per code.

    All codes are fitted at once by L-BFGS (the losses are independent, so this is the same as
    fitting them one by one). Codes with no positive
    example get a large negative intercept and are never predicted.
    """
    with _one_thread():
        return _fit(token_lists, labels, codes, threshold)


def _one_thread():  # -> context manager
    """Small BLAS calls run far slower multi-threaded on a shared machine (7 ms instead of
    0.3 ms for a 640x640 product here), so the fit pins BLAS to one thread when it can."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional speed-up
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit(
    token_lists: Sequence[Sequence[str]],
    labels: Sequence[frozenset[str] | set[str]],
    codes: Sequence[str],
    threshold: float,
) -> TextModel:
    from scipy.optimize import minimize

    wv, cv = _vocab(token_lists)
    n = len(token_lists)
    df = np.zeros(len(wv) + len(cv))
    for keys in token_lists:
        ids = {wv[g] for g in _word_grams(keys) if g in wv}
        ids |= {cv[g] for w in keys for g in _char_grams(w) if g in cv}
        df[list(ids)] += 1
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    k = len(codes)
    model = TextModel(
        tuple(codes), wv, cv, idf, np.zeros((len(idf), k)), np.full(k, -30.0), threshold,
        short_words=SHORT_WORDS, short_threshold=SHORT_THRESHOLD,
    )  # fmt: skip
    x = model.features(token_lists)
    y = np.array([[c in g for c in codes] for g in labels], dtype=np.float64).reshape(n, k)
    pos = y.sum(axis=0)
    fit = (pos > 0) & (pos < n)
    if not fit.any():
        return model
    y = y[:, fit]
    pos = pos[fit]
    # class_weight="balanced": each class carries half of the total weight.
    sw = C_REG * np.where(y > 0, n / (2 * pos), n / (2 * (n - pos)))
    # With an L2 penalty the weights lie in the span of the training rows, so optimise in that
    # (at most n-dimensional) space: X X^T = U L U^T, w = X^T U L^-1/2 c, X w = U L^1/2 c and
    # |w| = |c|. A few thousand parameters instead of one per feature per code.
    gram = (x @ x.T).toarray()
    lam, u = np.linalg.eigh(gram)
    keep = lam > 1e-8 * lam.max()
    lam, u = lam[keep], u[:, keep]
    z_basis = u * np.sqrt(lam)  # (n, r)
    r_dim, kf = z_basis.shape[1], int(fit.sum())

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        c = theta[: r_dim * kf].reshape(r_dim, kf)
        b = theta[r_dim * kf :]
        z = z_basis @ c + b
        # log(1 + exp(-z)) for y=1 and log(1 + exp(z)) for y=0, computed stably.
        ll = np.logaddexp(0.0, np.where(y > 0, -z, z))
        r = sw * (1.0 / (1.0 + np.exp(-z)) - y)
        val = float((sw * ll).sum() + 0.5 * (c * c).sum())
        return val, np.concatenate([(z_basis.T @ r + c).ravel(), r.sum(axis=0)])

    res = minimize(
        loss,
        np.zeros(r_dim * kf + kf),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 3000, "ftol": 1e-12, "gtol": 1e-6},
    )
    c = res.x[: r_dim * kf].reshape(r_dim, kf)
    model.coef[:, fit] = x.T @ (u @ (c / np.sqrt(lam)[:, None]))
    model.intercept[fit] = res.x[r_dim * kf :]
    return model


# ------------------------------------------------------------------------------- artefact

# Bump when featurisation or the fit changes in a way the settings below do not capture.
FORMAT = 1


def model_digest(training: bytes, codes: Sequence[str], threshold: float) -> str:
    """What a fitted model depends on: the training file, the codes (their order is the column
    order), the feature and fit settings, and the threshold."""
    h = hashlib.sha256()
    h.update(training)
    settings = {
        "format": FORMAT,
        "codes": list(codes),
        "word": _WORD.pattern,
        "char_range": list(CHAR_RANGE),
        "min_df": MIN_DF,
        "c_reg": C_REG,
        "threshold": threshold,
    }
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def save_model(model: TextModel, path: Path, digest: str) -> None:
    """Write the fitted model as a compressed .npz (weights as float32: a few hundred KB)."""
    words = sorted(model.word_vocab, key=model.word_vocab.__getitem__)
    chars = sorted(model.char_vocab, key=model.char_vocab.__getitem__)
    with path.open("wb") as fh:
        np.savez_compressed(
            fh,
            digest=np.array(digest),
            codes=np.array(model.codes),
            words=np.array(words),
            chars=np.array(chars),
            idf=model.idf,
            coef=model.coef.astype(np.float32),
            intercept=model.intercept,
            threshold=np.array(model.threshold),
        )


def load_model(path: Path, digest: str) -> tuple[TextModel | None, str]:
    """The model saved at ``path`` if it was fitted for ``digest``; else None and why not."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["digest"]) != digest:
                return None, f"{path} is stale (training file, codes or settings changed)"
            words = z["words"].tolist()
            chars = z["chars"].tolist()
            return TextModel(
                tuple(z["codes"].tolist()),
                {g: i for i, g in enumerate(words)},
                {g: i + len(words) for i, g in enumerate(chars)},
                z["idf"],
                z["coef"].astype(np.float64),
                z["intercept"],
                float(z["threshold"]),
                short_words=SHORT_WORDS,
                short_threshold=SHORT_THRESHOLD,
            ), ""
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except (OSError, ValueError, KeyError) as exc:
        return None, f"{path} is unreadable ({exc})"


def main(argv: Sequence[str] | None = None) -> int:
    """python -m bot.coding_model fit [CODEBOOK]: fit the codebook's model and save it."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bot.coding_model", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    fit = sub.add_parser("fit", help="fit the text model of a codebook and write its artefact")
    fit.add_argument("codebook", nargs="?", type=Path, default=None)
    args = ap.parse_args(argv)
    from bot.coding import refit_model

    path = refit_model(args.codebook)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
