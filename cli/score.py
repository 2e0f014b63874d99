"""`rtool score` (placeholder until the score issue lands)."""
import click


@click.command()
def score() -> None:
    """Class robustness score (Score-CAM saliency vs ground-truth boxes)."""
    raise click.UsageError("rtool score is not implemented yet")
