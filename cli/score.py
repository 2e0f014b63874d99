"""`rtool score`: class robustness score (Score-CAM saliency vs ground-truth boxes)."""
from __future__ import annotations

from pathlib import Path

import click

import rtool.score
from rtool.data import BOX_DATASETS, DataRequest, ShapesConfig
from rtool.engine import resolve_device, seed_everything
from rtool.models import ModelRequest
from rtool.score import SALIENCY_METHODS, ScoreSettings
from rtool.score.inputs import prepare_inputs
from rtool.score.settings import PRECISIONS
from rtool_cli.context import GlobalOptions, pass_options
from rtool_cli.options import (batch_size_option, dataset_options, default_of, model_options, parse_int_list,
                               shard_size_option)


@click.command()
@dataset_options(BOX_DATASETS, "shapes", "shapes = embedded generated data with planted cues (no files needed).")
@click.option("--bbox-dir", type=click.Path(path_type=Path), help="ImageNet: folder of the val bbox XMLs.")
@click.option("--voc-year", default="2007", show_default=True)
@click.option("--image-set", default="val", show_default=True, help="VOC ImageSets/Main list to score.")
@click.option("--include-difficult", is_flag=True, help="VOC: keep boxes marked difficult.")
@click.option("--limit-per-class", type=click.IntRange(min=1), help="Score at most N images per class.")
@model_options()
@click.option("--saliency", type=click.Choice(SALIENCY_METHODS), default=default_of(ScoreSettings, "method"),
              show_default=True)
@click.option("--parity", is_flag=True,
              help="Reproduce the authors' runs exactly (CIFAR stats, Resize=Crop, ReLU'd range-divided masks).")
@click.option("--image-size", type=click.IntRange(min=8), help="Input side S (default: the model's crop size).")
@click.option("--class-weight", type=click.Choice(["softmax", "sigmoid"]),
              help="Score-CAM channel weight (default: sigmoid for multi-label datasets such as voc, else softmax).")
@batch_size_option(ScoreSettings, "Masked images per forward pass (Score-CAM; default: sized to the input and the device).")
@click.option("--images-per-step", type=click.IntRange(min=1), default=default_of(ScoreSettings, "images_per_step"),
              show_default=True)
@shard_size_option(ScoreSettings)
@click.option("--precision", type=click.Choice(PRECISIONS), default=default_of(ScoreSettings, "precision"),
              show_default=True, help="bf16 approximates the masked passes (not for parity runs).")
@click.option("--top-k-channels", type=click.IntRange(min=1),
              help="Approximate Score-CAM with the k most active channels per image.")
@click.option("--compile", "compile_model", is_flag=True,
              help="Experimental: torch.compile the masked passes (see bench/README.md before using it).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=default_of(ScoreSettings, "threshold"),
              show_default=True, help="Flag classes with CRS below this.")
@click.option("--bottom-k", type=click.IntRange(min=0),
              help="Also flag the k lowest classes (default: 2.5% of the classes, rounded up: 25 on ImageNet).")
@click.option("--probe", is_flag=True, help="Hide the boxes of flagged classes and count what is still recognised.")
@click.option("--probe-all", is_flag=True, help="Probe every class (for comparison with the flagged ones).")
@click.option("--planted", help="shapes: comma-separated classes that carry the cue (default 1,4,7).")
@click.option("--overlays", type=click.IntRange(min=0), default=6, show_default=True,
              help="Lowest classes to draw saliency overlays for.")
@pass_options
def score(opts: GlobalOptions, dataset, data_dir, bbox_dir, voc_year, image_set, include_difficult, limit_per_class,
          model_name, weights, num_classes, layer, saliency, parity, image_size, class_weight, batch_size,
          images_per_step, shard_size, precision, top_k_channels, compile_model, threshold, bottom_k, probe,
          probe_all, planted, overlays) -> None:
    """Does the model look at the object or at its context? Ranks classes by CRS (lowest = least robust)."""
    from rtool.report.score import write_score_outputs

    settings = ScoreSettings(method=saliency, parity=parity, class_weight=class_weight, batch_size=batch_size,
                             precision=precision, top_k_channels=top_k_channels, compile=compile_model,
                             seed=opts.seed, images_per_step=images_per_step, shard_size=shard_size,
                             threshold=threshold, bottom_k=bottom_k,
                             probe="all" if probe_all else "flagged" if probe else "none")
    device = resolve_device(opts.device)
    seed_everything(opts.seed)
    out_dir = opts.out or Path("rtool-out") / "score"
    planted_classes = parse_int_list("--planted", planted)
    shapes = ShapesConfig(seed=opts.seed, **({"planted": planted_classes} if planted_classes else {}))
    data = DataRequest(dataset=dataset, data_dir=data_dir, bbox_dir=bbox_dir, voc_year=voc_year, image_set=image_set,
                       limit_per_class=limit_per_class, image_size=image_size, include_difficult=include_difficult,
                       shapes=shapes)
    inputs = prepare_inputs(data, ModelRequest(model_name, weights, num_classes, layer), parity=parity,
                            device=device, quiet=opts.quiet)
    result = rtool.score.run(inputs.model, inputs.layer, inputs.dataset, settings, device=device,
                             model_name=inputs.model_name, out_dir=out_dir, quiet=opts.quiet,
                             identity=inputs.identity, planted=inputs.planted)
    if result is None:  # not rank 0 under torchrun: rank 0 writes the outputs
        return
    write_score_outputs(result, out_dir, dataset=inputs.dataset, class_csv_names=inputs.class_csv_names,
                        overlay_classes=overlays)
    report_summary(result, inputs, out_dir)


def report_summary(result, inputs, out_dir: Path) -> None:
    from rtool.report.score import format_lowest_table

    stats = result.stats
    click.echo(f"scored {len(result.images)} images in {len(result.classes)} classes "
               f"({inputs.model_name}, layer {inputs.layer_name}); skipped {len(result.skipped)}")
    if "skip_fraction" in stats and stats.get("channels_total"):
        click.echo(f"Score-CAM: {int(stats['masked_forwards'])} masked forwards, "
                   f"{1 - stats['channels_evaluated'] / stats['channels_total']:.1%} of channels skipped (all-zero)")
    click.echo(format_lowest_table(result, n=10))
    if result.planted:
        names = ", ".join(f"{c} {result.by_id()[c].name}" for c in result.planted if c in result.by_id())
        verdict = "yes" if result.planted_ranked_lowest() else "NO"
        click.echo(f"planted classes ({names}) ranked lowest: {verdict}")
    click.echo(f"results: {out_dir}/ (classes.csv, images.csv, summary.json, report.html)")
