"""Evaluation plots drawn without pyplot (no display, no global backend change)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from knot_prefect.tracking.scoring import ScoredPredictions


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(figure)  # Renders to memory: works on servers with no display.
    return figure


def confusion_matrix_figure(p: ScoredPredictions) -> Figure:
    """Counts of true labels (rows) against predicted labels (columns)."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(p.y_true, p.y_pred, labels=p.classes)
    figure = _figure()
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(p.classes))
    labels = [str(label) for label in p.classes]
    axes.set_xticks(list(ticks), labels)
    axes.set_yticks(list(ticks), labels)
    for row in ticks:
        for column in ticks:
            axes.text(column, row, str(matrix[row, column]), ha="center", va="center")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix")
    figure.tight_layout()
    return figure


def roc_figure(p: ScoredPredictions) -> Figure:
    """ROC curve (one-vs-rest per class when there are more than two classes)."""
    from sklearn.metrics import auc, roc_curve

    assert p.y_proba is not None
    figure = _figure()
    axes = figure.add_subplot()
    columns = [1] if len(p.classes) == 2 else list(range(len(p.classes)))
    for column in columns:
        label = p.classes[column]
        fpr, tpr, _ = roc_curve(p.y_true == label, p.y_proba[:, column])
        axes.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC")
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure


def residuals_figure(p: ScoredPredictions) -> Figure:
    """Residuals against predictions, and their distribution."""
    residuals = p.y_true.astype(float) - p.y_pred.astype(float)
    figure = _figure()
    figure.set_size_inches(9, 4)
    scatter, histogram = figure.subplots(1, 2)
    scatter.scatter(p.y_pred, residuals, s=6, alpha=0.5)
    scatter.axhline(0.0, color="grey", linestyle="--")
    scatter.set_xlabel("predicted")
    scatter.set_ylabel("true - predicted")
    scatter.set_title("Residuals")
    histogram.hist(residuals, bins=30)
    histogram.set_xlabel("true - predicted")
    histogram.set_title("Residual distribution")
    figure.tight_layout()
    return figure
