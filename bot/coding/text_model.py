"""A small statistical text model that backs up the rule coder (bot/coding/rules.py).

The rules are precise but only know the wording their author thought of; a new author's
phrasing ("the hall's damp" vs "damp in the building") slips through. This module learns, from
the labelled answers shipped with the codebook, one logistic regression per code over TF-IDF
features: word 1-2-grams and character 3-5-grams within words (which tolerate typos and
inflections).

Rules and model are not simply unioned: a small *combiner* (one logistic regression shared by
all codes, eight numbers) decides each code from the model's probability for the whole answer,
its highest probability over the answer's sentences and clauses (a long answer naming four
barriers dilutes each one's signal in the whole-answer features), whether the rules assigned
the code, how strong their evidence was, whether it was a self-contained cue, and whether the
answer is short. The combiner is fitted on *out-of-set* predictions: for each labelled set, a
model fitted without it and the rules pruned to the cues supported elsewhere (see
``bot.coding.training.fit_text_model``), so it learns how far each kind of evidence can be
trusted on wording that neither rules nor model have seen. Rule negation still vetoes a code
outright.

Featurisation is written out here rather than taken from scikit-learn's vectorisers, for
speed: character n-grams are computed once per distinct word and cached, so a batch of
answers costs a dictionary look-up per word plus a few vectorised numpy operations. The
logistic regressions are fitted with scipy's L-BFGS (importing scikit-learn alone would take
longer than the whole fit).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

try:  # optional: pins BLAS to one thread during the fit (see _one_thread)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional speed-up
    threadpool_limits = None

# Words: letters/digits with an inner apostrophe ("don't"), lower-cased by the caller.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
CHAR_RANGE = (3, 5)
# Features must occur in this many training answers. 1 keeps the words that the authored
# examples teach only once (leave-one-set-out macro-F1 0.857 with 2, 0.864 with 1).
MIN_DF = 1
C_REG = 4.0  # inverse L2 strength of the logistic regressions
SHORT_WORDS = 6  # an answer of at most this many words is "short" for the combiner
CACHE_MAX = 200_000
PROBA_CHUNK = 64  # answers per vectorised step of TextModel.proba
# Each feature block is divided by the square root of its l2 norm rather than by the norm: a
# long answer that names several barriers keeps more of each one's signal (leave-one-set-out
# macro-F1 +0.005 with the combiner; plain l2 scaled every answer to the same length).
NORM_POWER = 0.5
# Sentence and clause breaks for the per-segment probabilities: punctuation, " - ", and
# contrastive or additive conjunctions ("..., but", "..., and", "however").
_SEGMENT = re.compile(
    r"[.;!?\n]+|\s-\s|,\s*(?:but|and|so|plus|also)\b|\b(?:but|however|although|though|whereas)\b"
)
# The combiner's inputs, in the order of TextModel.combiner (followed by its intercept).
COMBINER_FEATURES = (
    "model_logit",  # the model's log-odds for the whole answer
    "segment_logit",  # its highest log-odds over the answer's sentences and clauses
    "rule",  # 1 if the rules assigned the code
    "rule_strength",  # strength of the rules' evidence for the code (0..1)
    "rule_cue",  # 1 if a self-contained cue (not only a topic word) spoke for it
    "short",  # 1 if the answer has at most SHORT_WORDS words
    "short_x_model",  # short x model_logit: a few generic words are thin evidence
)
# Used when no combiner could be fitted (a training file without at least three labelled sets):
# the shipped combiner, rounded.
DEFAULT_COMBINER = (0.39, 0.48, 1.4, 1.16, 0.67, -0.09, -0.01, -0.48)
COMBINER_L2 = 1.0  # L2 strength of the combiner's regression (its intercept is not penalised)


def tokens_of(norm: str) -> list[tuple[int, int, str]]:
    """(start, end, key) per word of a lower-cased text; the key drops apostrophes."""
    return [(m.start(), m.end(), m.group().replace("'", "")) for m in _WORD.finditer(norm)]


def segments_of(norm: str, tokens: Sequence[tuple[int, int, str]]) -> list[list[str]]:
    """The word keys of each sentence or clause of a lower-cased answer that has at least two
    words; an empty list when the answer is a single segment (its whole is its one segment)."""
    cuts = [m.start() for m in _SEGMENT.finditer(norm)]
    if not cuts:
        return []
    out: list[list[str]] = [[]]
    ci = 0
    for start, _end, key in tokens:
        while ci < len(cuts) and cuts[ci] <= start:
            ci += 1
            if out[-1]:
                out.append([])
        out[-1].append(key)
    segs = [seg for seg in out if len(seg) >= 2]
    return segs if len(segs) >= 2 else []


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def combiner_inputs(
    p: np.ndarray,
    p_seg: np.ndarray,
    rule: np.ndarray,
    strength: np.ndarray,
    cue: np.ndarray,
    n_words: np.ndarray,
    short_words: int = SHORT_WORDS,
) -> np.ndarray:
    """(n_answers, n_codes, len(COMBINER_FEATURES)) inputs of the combiner."""
    lp = _logit(p)
    short = np.broadcast_to((np.asarray(n_words) <= short_words)[:, None], lp.shape)
    cols = [lp, _logit(p_seg), rule, strength, cue, short, short * lp]
    return np.stack(cols, axis=-1).astype(np.float64)


def fit_combiner(x: np.ndarray, y: np.ndarray, l2: float = COMBINER_L2) -> np.ndarray:
    """Weights and intercept of one logistic regression over all codes' (answer, code) rows:
    ``x`` is (rows, len(COMBINER_FEATURES)), ``y`` 0/1 per row."""
    # Lazy: scipy is heavy to import and only fitting needs it, never coding.
    from scipy.optimize import minimize

    xb = np.column_stack([x, np.ones(len(x))])
    yb = np.asarray(y, dtype=bool)

    def loss(b: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ b
        ll = np.logaddexp(0.0, np.where(yb, -z, z))
        r = 1.0 / (1.0 + np.exp(-z)) - yb
        pen = np.r_[b[:-1], 0.0]
        return float(ll.sum() + 0.5 * l2 * (pen * pen).sum()), xb.T @ r + l2 * pen

    res = minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(res.x)


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
    # A code is assigned when the combiner's probability reaches ``threshold``.
    threshold: float = 0.5
    near: float = 0.15  # a model-only code below threshold + near is doubtful
    combiner: np.ndarray = field(default_factory=lambda: np.array(DEFAULT_COMBINER))
    combiner_fitted: bool = False  # False: DEFAULT_COMBINER (no labelled sets to fit it on)
    short_words: int = SHORT_WORDS
    _char_cache: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

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
        if NORM_POWER != 1.0:
            norm_w **= NORM_POWER
            norm_c **= NORM_POWER
        data /= np.where(is_char, norm_c[row_of], norm_w[row_of])
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=n_rows), out=ptr[1:])
        return ptr, col, data

    def features(self, token_lists: Sequence[Sequence[str]]):  # -> scipy.sparse.csr_matrix
        """The rows of ``rows`` as a scipy CSR matrix (used by the fit only)."""
        # Lazy: scipy is heavy to import and only fitting needs it, never coding.
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
        # Per answer, the sum of weight x value over its features for every code at once; each
        # answer's sum is taken on its own, so batching never changes a result. In chunks of
        # answers, so that the (features x codes) products stay small enough to sit in cache.
        for lo in range(0, len(token_lists), PROBA_CHUNK):
            hi = min(lo + PROBA_CHUNK, len(token_lists))
            starts = ptr[lo:hi]
            full = starts < ptr[lo + 1 : hi + 1]
            if not full.any():
                continue
            a, b = ptr[lo], ptr[hi]
            terms = self.coef[col[a:b]] * data[a:b, None]
            z[lo:hi][full] += np.add.reduceat(terms, starts[full] - a, axis=0)
        return 1.0 / (1.0 + np.exp(-z))

    def scores(
        self, token_lists: Sequence[Sequence[str]], segment_lists: Sequence[Sequence[Sequence[str]]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for each whole answer, and the highest over each answer's segments
        (``segments_of``; an answer without segments gets its whole-answer probability)."""
        flat = list(token_lists)
        owner: list[int] = []
        for i, segs in enumerate(segment_lists):
            flat.extend(segs)
            owner.extend([i] * len(segs))
        proba = self.proba(flat)
        n = len(token_lists)
        whole = proba[:n]
        best = whole.copy()
        if owner:
            np.maximum.at(best, np.asarray(owner), proba[n:])
        return whole, best

    def combine(self, inputs: np.ndarray) -> np.ndarray:
        """The combiner's probability per answer and code from ``combiner_inputs``."""
        w = self.combiner
        return 1.0 / (1.0 + np.exp(-(inputs @ w[:-1] + w[-1])))

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


def _one_thread() -> contextlib.AbstractContextManager[object]:
    """Small BLAS calls run far slower multi-threaded on a shared machine (7 ms instead of
    0.3 ms for a 640x640 product here), so the fit pins BLAS to one thread when it can."""
    if threadpool_limits is None:  # pragma: no cover - optional speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _fit(
    token_lists: Sequence[Sequence[str]],
    labels: Sequence[frozenset[str] | set[str]],
    codes: Sequence[str],
    threshold: float,
) -> TextModel:
    # Lazy: scipy is heavy to import and only fitting needs it, never coding.
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
        tuple(codes), wv, cv, idf, np.zeros((len(idf), k)), np.full(k, -30.0), threshold
    )
    x = model.features(token_lists)
    y = np.array([[c in g for c in codes] for g in labels], dtype=np.float64).reshape(n, k)
    # 0 where a code is outside an answer's label space (its author never used that code, so
    # its absence says nothing): such (answer, code) pairs carry no weight in the fit.
    m = np.array(
        [[c not in getattr(g, "unlabelled", ()) for c in codes] for g in labels], dtype=np.float64
    ).reshape(n, k)
    y = y * m
    pos = y.sum(axis=0)
    n_code = m.sum(axis=0)
    fit = (pos > 0) & (pos < n_code)
    if not fit.any():
        return model
    y, m = y[:, fit], m[:, fit]
    pos, n_code = pos[fit], n_code[fit]
    # class_weight="balanced": each class carries half of the total weight (of the answers
    # labelled for that code).
    sw = C_REG * m * np.where(y > 0, n_code / (2 * pos), n_code / (2 * (n_code - pos)))
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
FORMAT = 3  # 3: per-answer label spaces (unlabelled codes carry no weight)


def model_digest(training: bytes, codes: Sequence[str], threshold: float, rules: str = "") -> str:
    """What a fitted model depends on: the training file, the codes (their order is the column
    order), the feature and fit settings, the threshold, and the rules (``rules``: a
    fingerprint of the cues and lexicons, which the combiner was fitted against)."""
    h = hashlib.sha256()
    h.update(training)
    settings = {
        "format": FORMAT,
        "codes": list(codes),
        "word": _WORD.pattern,
        "char_range": list(CHAR_RANGE),
        "min_df": MIN_DF,
        "c_reg": C_REG,
        "norm_power": NORM_POWER,
        "segment": _SEGMENT.pattern,
        "short_words": SHORT_WORDS,
        "combiner_l2": COMBINER_L2,
        "threshold": threshold,
        "rules": rules,
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
            combiner=model.combiner,
            combiner_fitted=np.array(model.combiner_fitted),
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
                combiner=z["combiner"].astype(np.float64),
                combiner_fitted=bool(z["combiner_fitted"]),
            ), ""
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except (OSError, ValueError, KeyError) as exc:
        return None, f"{path} is unreadable ({exc})"
