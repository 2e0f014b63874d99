"""`rtool score`: class robustness score (Score-CAM saliency vs ground-truth boxes)."""
from __future__ import annotations

from pathlib import Path

import click

from rtool.data.shapes import ShapesConfig
from rtool.engine import resolve_device, seed_everything
from rtool.errors import UsageError
from rtool.score import SALIENCY_METHODS, ScoreSettings, probe_classes, score_dataset
from rtool.score.inputs import DATASETS, DataRequest, ModelRequest, prepare_inputs
from rtool_cli.context import GlobalOptions, pass_options


def parse_class_list(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--planted {text!r}: expected comma-separated class indices like 1,4,7") from None


@click.command()
@click.option("--dataset", type=click.Choice(DATASETS), default="shapes", show_default=True,
              help="shapes = embedded generated data with planted cues (no files needed).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Dataset root (imagenet, voc, folder).")
@click.option("--bbox-dir", type=click.Path(path_type=Path), help="ImageNet: folder of the val bbox XMLs.")
@click.option("--voc-year", default="2007", show_default=True)
@click.option("--image-set", default="val", show_default=True, help="VOC ImageSets/Main list to score.")
@click.option("--include-difficult", is_flag=True, help="VOC: keep boxes marked difficult.")
@click.option("--limit-per-class", type=click.IntRange(min=1), help="Score at most N images per class.")
@click.option("--model", "model_name", help="Model name (resnet18, resnet50, resnet152, alexnet, ...).")
@click.option("--weights", help="None, DEFAULT, a torchvision weights name, or a checkpoint path.")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classifier outputs (when they differ from 1000).")
@click.option("--layer", help="Target layer by dotted path (default: the model's last conv block).")
@click.option("--saliency", type=click.Choice(SALIENCY_METHODS), default="scorecam", show_default=True)
@click.option("--parity", is_flag=True,
              help="Reproduce the authors' runs exactly (CIFAR stats, Resize=Crop, ReLU'd range-divided masks).")
@click.option("--image-size", type=click.IntRange(min=8), help="Input side S (default: the model's crop size).")
@click.option("--class-weight", type=click.Choice(["softmax", "sigmoid"]),
              help="Score-CAM channel weight (default: sigmoid for voc, softmax otherwise).")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Masked images per forward pass (Score-CAM; default: sized to the input and the device).")
@click.option("--images-per-step", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--shard-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Images per resumable shard.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16 approximates the masked passes (not for parity runs).")
@click.option("--top-k-channels", type=click.IntRange(min=1),
              help="Approximate Score-CAM with the k most active channels per image.")
@click.option("--compile", "compile_model", is_flag=True,
              help="Experimental: torch.compile the masked passes (see bench/README.md before using it).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="Flag classes with CRS below this.")
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
          images_per_step, shard_size, precision, top_k_channels, compile_model, threshold, bottom_k, probe, probe_all, planted,
          overlays) -> None:
    """Does the model look at the object or at its context? Ranks classes by CRS (lowest = least robust)."""
    from rtool.report import write_score_outputs

    if parity and (precision != "fp32" or top_k_channels):
        raise UsageError("--parity runs in fp32 over all channels; drop --precision/--top-k-channels")
    device = resolve_device(opts.device)
    seed_everything(opts.seed)
    out_dir = opts.out or Path("rtool-out") / "score"
    planted_classes = parse_class_list(planted)
    shapes = ShapesConfig(seed=opts.seed, **({"planted": planted_classes} if planted_classes else {}))
    data = DataRequest(dataset=dataset, data_dir=data_dir, bbox_dir=bbox_dir, voc_year=voc_year, image_set=image_set,
                       limit_per_class=limit_per_class, image_size=image_size, include_difficult=include_difficult,
                       shapes=shapes)
    inputs = prepare_inputs(data, ModelRequest(model_name, weights, num_classes, layer), parity=parity,
                            device=device, quiet=opts.quiet)

    options: dict = {}
    if saliency == "scorecam":
        options = {"weight": class_weight or ("sigmoid" if dataset == "voc" else "softmax")}
        if batch_size:
            options["batch_size"] = batch_size
        if precision == "bf16":
            options["autocast"] = "bf16"
        if top_k_channels:
            options["top_k"] = top_k_channels
        if compile_model:
            options["compile"] = True
    elif saliency == "smoothgradcampp":
        options = {"seed": opts.seed}
    settings = ScoreSettings(method=saliency, parity=parity, saliency_options=options,
                             images_per_step=images_per_step, shard_size=shard_size, threshold=threshold,
                             bottom_k=bottom_k)
    result = score_dataset(inputs.model, inputs.layer, inputs.dataset, settings, device=device,
                           model_name=inputs.model_name, out_dir=out_dir, quiet=opts.quiet,
                           identity={**inputs.identity, "layer": inputs.layer_name})
    if result is None:  # not rank 0 under torchrun: rank 0 writes the outputs
        return
    result.planted = inputs.planted
    if probe or probe_all:
        targets = [c.id for c in result.classes] if probe_all else result.flagged
        probe_classes(inputs.model, inputs.dataset, result, targets, device=device)
    files = write_score_outputs(result, out_dir, dataset=inputs.dataset, class_csv_names=inputs.class_csv_names,
                                overlay_classes=overlays)
    report_summary(result, inputs, files, out_dir)


def report_summary(result, inputs, files: dict, out_dir: Path) -> None:
    from rtool.report import format_lowest_table

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
