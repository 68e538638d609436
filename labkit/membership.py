"""Membership inference: member / non-member splits, attack evaluation (accuracy, AUC) and plots.

The notebook calls ART's attacks (``MembershipInferenceBlackBox``, ``MembershipInferenceBlackBoxRuleBased``)
and defences directly; labkit draws the members, the non-members and the attacker's own images,
trains the small target and shadow models (Shokri et al.'s attacker learns what "member" looks
like from shadow models it trained itself), and turns attack scores into the lab's numbers and pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labkit.data import check_images

__all__ = ["MembershipSplit", "member_split", "train_target", "ShadowData", "shadow_predictions", "AttackResult",
           "attack_metrics", "membership_scores", "score_attack", "plot_roc", "plot_attack_bars", "plot_confidence"]


@dataclass
class MembershipSplit:
    """Members (the target's training images), non-members, and the attacker's own images; all disjoint."""

    x_members: np.ndarray
    y_members: np.ndarray
    x_non_members: np.ndarray
    y_non_members: np.ndarray
    x_attacker: np.ndarray
    y_attacker: np.ndarray

    def __repr__(self) -> str:
        return (f"MembershipSplit({len(self.x_members)} members, {len(self.x_non_members)} non-members, "
                f"{len(self.x_attacker)} images of the attacker's own)")


def member_split(x: np.ndarray, y: np.ndarray, n_members: int, *, n_non_members: int | None = None,
                 seed: int = 0) -> MembershipSplit:
    """Draw the target's ``n_members`` training images, disjoint non-members, and give the rest to the attacker.

    All three come from the same distribution (the lab's training images), so the only difference
    between a member and a non-member is whether the target model was trained on it. The attacker's
    images are what it trains its shadow models on: data like the target's, but not the target's.

    :param x: the pool of images, shape (n, height, width, channels), in [0, 1].
    :param y: their integer labels, shape (n,).
    :param n_members: how many members (the target's whole training set).
    :param n_non_members: how many non-members (default: as many as members).
    :param seed: seed of the draw.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x has shape {x.shape}; expected a batch of images (n, height, width, channels)")
    x = check_images(x, x.shape[1:])
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels")
    n_non_members = n_members if n_non_members is None else n_non_members
    for name, value in (("n_members", n_members), ("n_non_members", n_non_members)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
    if n_members + n_non_members > len(x):
        raise ValueError(f"{n_members} members + {n_non_members} non-members need {n_members + n_non_members} "
                         f"images but the pool has {len(x)}; ask for fewer")
    order = np.random.default_rng(seed).permutation(len(x))
    members, non_members = order[:n_members], order[n_members:n_members + n_non_members]
    rest = order[n_members + n_non_members:]
    return MembershipSplit(x[members], y[members], x[non_members], y[non_members], x[rest], y[rest])


def train_target(x: np.ndarray, y: np.ndarray, *, passes: int = 80, batch_size: int = 16, nb_classes: int = 10,
                 classifier: Any = None, progress: bool = True, desc: str = "target model",
                 **build_kwargs: Any) -> Any:
    """Train the lab's CNN on a small set for ``passes`` passes over it; return an ART ``KerasClassifier``.

    Many passes over few images is how a model memorises them. The passes are grouped (the images are
    repeated within one Keras epoch, up to 10 times) because Keras spends a fixed time per epoch, which
    dominates on tiny data sets; every image is still seen ``passes`` times.

    :param x: the training images (the members).
    :param y: their integer labels.
    :param passes: passes over ``x``.
    :param batch_size: images per gradient step.
    :param nb_classes: number of classes.
    :param classifier: a classifier from an earlier call to re-initialise and train again (saves Keras's
        compile time; ``build_kwargs`` are then ignored); None builds a new model.
    :param progress: draw a progress bar.
    :param desc: the progress bar's label.
    :param build_kwargs: passed on to ``labkit.models.build_model`` (hidden, dropout, learning_rate).
    """
    from labkit.models import train_model

    if not isinstance(passes, (int, np.integer)) or isinstance(passes, bool) or passes < 1:
        raise ValueError(f"passes must be a positive integer, got {passes!r}")
    y = np.asarray(y).reshape(-1)
    repeat = max(r for r in range(1, min(passes, 10) + 1) if passes % r == 0)
    x_rep, y_rep = np.concatenate([x] * repeat), np.concatenate([y] * repeat)
    if classifier is None:
        return train_model(x_rep, y_rep, nb_classes=nb_classes, epochs=passes // repeat, batch_size=batch_size,
                           progress=progress, desc=desc, **build_kwargs)
    from labkit._fast_keras import prepare_fit
    from labkit.extraction import reset_substitute

    reset_substitute(classifier)
    x_rep, onehot = check_images(x_rep, x_rep.shape[1:]), np.eye(nb_classes, dtype=np.float32)[y_rep]
    prepare_fit(classifier.model, x_rep, onehot)
    classifier.model.fit(x_rep, onehot, epochs=passes // repeat, batch_size=batch_size, shuffle=True, verbose=0)
    return classifier


@dataclass
class ShadowData:
    """What the attacker's shadow models answered on their own members and non-members (one-hot labels)."""

    pred_members: np.ndarray
    y_members: np.ndarray
    pred_non_members: np.ndarray
    y_non_members: np.ndarray

    def postprocessed(self, postprocessor: Any) -> "ShadowData":
        """Return the same data with an ART postprocessor applied to the predictions.

        A defence-aware attacker puts its shadow models behind the same output defence as the target.

        :param postprocessor: an ART postprocessor (``ReverseSigmoid(...)``, ``Rounded(...)`` ...).
        """
        return ShadowData(postprocessor(self.pred_members), self.y_members, postprocessor(self.pred_non_members),
                          self.y_non_members)


def shadow_predictions(x: np.ndarray, y: np.ndarray, *, n_members: int, shadows: int = 3, passes: int = 80,
                       batch_size: int = 16, nb_classes: int = 10, progress: bool = True,
                       **build_kwargs: Any) -> ShadowData:
    """Train ``shadows`` models the way the target was trained, on the attacker's own images; return their answers.

    Shadow model i trains on ``n_members`` images of the attacker's and is asked about them (members)
    and about ``n_members`` others it never saw (non-members); all subsets are disjoint. ART's
    ``MembershipInferenceBlackBox.fit(pred=..., test_pred=...)`` learns from these answers. (ART's own
    ``ShadowModels`` utility does the same but trains each shadow with its estimator's default ``fit``,
    not the target's recipe.)

    :param x: the attacker's images.
    :param y: their integer labels.
    :param n_members: training images per shadow model (as many as the target had).
    :param shadows: number of shadow models.
    :param passes: passes over its training images per shadow (the target's recipe).
    :param batch_size: images per gradient step.
    :param nb_classes: number of classes.
    :param progress: draw a progress bar over shadow models.
    :param build_kwargs: the target's architecture settings (hidden, dropout, learning_rate).
    """
    from tqdm.auto import tqdm

    if not isinstance(shadows, (int, np.integer)) or isinstance(shadows, bool) or shadows < 1:
        raise ValueError(f"shadows must be a positive integer, got {shadows!r}")
    if not isinstance(n_members, (int, np.integer)) or isinstance(n_members, bool) or n_members < 1:
        raise ValueError(f"n_members must be a positive integer, got {n_members!r}")
    y = np.asarray(y).reshape(-1)
    if shadows * 2 * n_members > len(x):
        raise ValueError(f"{shadows} shadow models of {n_members} members and {n_members} non-members need "
                         f"{shadows * 2 * n_members} images; the attacker has {len(x)}. Use fewer shadows.")
    eye = np.eye(nb_classes, dtype=np.float32)
    parts: dict[str, list[np.ndarray]] = {"pm": [], "ym": [], "pn": [], "yn": []}
    model = None
    for i in tqdm(range(shadows), desc="shadow models", unit="model", disable=not progress):
        members = slice(2 * i * n_members, (2 * i + 1) * n_members)
        non_members = slice((2 * i + 1) * n_members, (2 * i + 2) * n_members)
        model = train_target(x[members], y[members], passes=passes, batch_size=batch_size, nb_classes=nb_classes,
                             classifier=model, progress=False, **build_kwargs)
        parts["pm"].append(model.predict(x[members]))
        parts["ym"].append(eye[y[members]])
        parts["pn"].append(model.predict(x[non_members]))
        parts["yn"].append(eye[y[non_members]])
    return ShadowData(*(np.concatenate(parts[key]) for key in ("pm", "ym", "pn", "yn")))


@dataclass
class AttackResult:
    """Membership scores of every member and non-member, and the numbers they give."""

    member_scores: np.ndarray
    non_member_scores: np.ndarray
    attack_accuracy: float
    auc: float
    advantage: float

    def as_dict(self) -> dict[str, float]:
        """Return the numbers: attack_accuracy, auc, advantage."""
        return {"attack_accuracy": self.attack_accuracy, "auc": self.auc, "advantage": self.advantage}


def attack_metrics(member_scores: np.ndarray, non_member_scores: np.ndarray, *,
                   threshold: float = 0.5) -> AttackResult:
    """Turn membership scores into the attack's accuracy, AUC and advantage.

    Accuracy is balanced: the mean of the share of members called members and the share of non-members
    called non-members, so 0.5 is guessing whatever the class sizes. Advantage = true-positive rate -
    false-positive rate (Yeom et al.): 0 for guessing, 1 for a perfect attack.

    :param member_scores: the attack's scores (higher = "member") for true members.
    :param non_member_scores: the same for non-members.
    :param threshold: a score >= threshold is a "member" guess.
    """
    from sklearn.metrics import roc_auc_score

    members = np.asarray(member_scores, dtype=np.float64).reshape(-1)
    non_members = np.asarray(non_member_scores, dtype=np.float64).reshape(-1)
    if len(members) == 0 or len(non_members) == 0:
        raise ValueError("need at least one member score and one non-member score")
    tpr, fpr = float(np.mean(members >= threshold)), float(np.mean(non_members >= threshold))
    truth = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    auc = float(roc_auc_score(truth, np.r_[members, non_members]))
    return AttackResult(members, non_members, (tpr + 1.0 - fpr) / 2.0, auc, tpr - fpr)


def membership_scores(attack: Any, x: np.ndarray, y: np.ndarray, *, nb_classes: int = 10,
                      probabilities: bool = True) -> np.ndarray:
    """Ask a (trained) ART membership attack about the images ``x``; return one score (or 0/1 guess) each.

    Labels go to ART one-hot: its rule-based attack would otherwise guess the number of classes from
    the labels it is given.

    :param attack: an ART membership-inference attack on the target (``MembershipInferenceBlackBox`` after
        ``fit``, or ``MembershipInferenceBlackBoxRuleBased``).
    :param x: the images, with labels ``y`` (integers or one-hot).
    :param nb_classes: number of classes, for the one-hot labels.
    :param probabilities: scores (higher = "member") when True, else ART's 0/1 guesses.
    """
    from labkit.data import check_labels

    onehot = np.eye(nb_classes, dtype=np.float32)[check_labels(y, len(x))]
    out = np.asarray(attack.infer(np.asarray(x, dtype=np.float32), onehot, probabilities=probabilities),
                     dtype=np.float64)
    if out.ndim == 2 and out.shape[1] == 2:  # the rule-based attack's scores: (non-member, member) columns
        out = out[:, 1]
    return out.reshape(-1)


def score_attack(attack: Any, split: MembershipSplit, *, nb_classes: int = 10) -> AttackResult:
    """Ask a (trained) ART membership attack about every member and non-member; return the numbers.

    :param attack: an ART membership-inference attack on the target (``MembershipInferenceBlackBox`` after
        ``fit``, or ``MembershipInferenceBlackBoxRuleBased``).
    :param split: the members and non-members.
    :param nb_classes: number of classes, for the one-hot labels.
    """
    return attack_metrics(membership_scores(attack, split.x_members, split.y_members, nb_classes=nb_classes),
                          membership_scores(attack, split.x_non_members, split.y_non_members, nb_classes=nb_classes))


def plot_roc(results: dict[str, AttackResult], *, title: str = "Membership inference: ROC curves") -> Any:
    """Plot one ROC curve per model (true-positive vs false-positive rate of the attack); return the figure.

    :param results: ``{model name: AttackResult}``.
    :param title: the figure's title.
    """
    from sklearn.metrics import roc_curve

    from labkit.plots import REFERENCE, series_style, subplots

    if not results:
        raise ValueError("no results to plot")
    fig, ax = subplots(figsize=(5.5, 4.8))
    for k, (name, result) in enumerate(results.items()):
        truth = np.r_[np.ones(len(result.member_scores)), np.zeros(len(result.non_member_scores))]
        fpr, tpr, _ = roc_curve(truth, np.r_[result.member_scores, result.non_member_scores])
        ax.plot(fpr, tpr, label=f"{name} (AUC {result.auc:.2f})", markevery=max(1, len(fpr) // 8), **series_style(k))
    ax.plot([0, 1], [0, 1], color=REFERENCE, linestyle=":", marker="", linewidth=1, label="guessing")
    ax.set_xlabel("false-positive rate (non-members called members)")
    ax.set_ylabel("true-positive rate (members found)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_attack_bars(table: Any, *, columns: tuple[str, ...] = ("attack accuracy", "model accuracy"),
                     title: str = "Attack accuracy and model accuracy per model") -> Any:
    """Plot grouped bars (one group per model, one bar per column of ``table``) with a 0.5 guessing line.

    :param table: a pandas DataFrame indexed by model name.
    :param columns: the columns to draw.
    :param title: the figure's title.
    """
    from labkit.plots import MAX_WIDTH, REFERENCE, bar_style, subplots

    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the columns {missing}; it has {list(table.columns)}")
    fig, ax = subplots(figsize=(min(MAX_WIDTH, 1.1 * len(columns) * len(table) + 4.5), 3.8))
    width = 0.8 / len(columns)
    positions = np.arange(len(table))
    for i, column in enumerate(columns):
        values = table[column].astype(float).to_numpy()
        bars = ax.bar(positions + (i - (len(columns) - 1) / 2) * width, values, width, label=column, linewidth=0.6,
                      **bar_style(i))
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.axhline(0.5, color=REFERENCE, linestyle="--", linewidth=1, label="attack guessing (0.5)")
    ax.set_xticks(positions, [str(name) for name in table.index])
    ax.set_ylim(0, 1.1)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_confidence(classifier: Any, split: MembershipSplit, *, title: str | None = None) -> Any:
    """Histogram the model's confidence in the true label for members and non-members; return the figure.

    The gap between the two histograms is what a black-box membership attack exploits.

    :param classifier: an ART classifier (its ``predict`` gives probabilities).
    :param split: the members and non-members.
    :param title: the figure's title.
    """
    from labkit.plots import bar_style, subplots

    fig, ax = subplots(figsize=(6.5, 3.6))
    confidences = [classifier.predict(x)[np.arange(len(x)), y] for x, y in
                   ((split.x_members, split.y_members), (split.x_non_members, split.y_non_members))]
    _, _, groups = ax.hist(confidences, bins=np.linspace(0, 1, 11), label=["members", "non-members"])
    for i, patches in enumerate(groups):
        for patch in patches:
            patch.set(linewidth=0.6, **bar_style(i))
    ax.set_xlabel("the model's probability for the true label")
    ax.set_ylabel("images")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(title or "Confidence on members vs non-members")
    fig.tight_layout()
    return fig
