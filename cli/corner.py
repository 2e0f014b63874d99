"""`rtool corner`: corner cases (surprise adequacy) and the DeepFool robustness radius."""
from __future__ import annotations

from pathlib import Path

import click

import rtool.corner
from rtool.corner import DEEPFOOL_MODES, VARIANTS, CornerSettings, DeepFoolConfig
from rtool.corner.inputs import inputs_for_model, load_corner_data, load_corner_model
from rtool.data import CLASSIFICATION_DATASETS
from rtool.engine import resolve_device, seed_everything
from rtool.models import ModelRequest
from rtool_cli.context import GlobalOptions, pass_options
from rtool_cli.options import dataset_options, default_of, model_options, shard_size_option

DATASET_HELP = "digits = scikit-learn's digits at 28x28 with planted mislabels (embedded, no files needed)."


def _planted_option(command):
    return click.option("--planted", type=click.IntRange(min=0),
                        help="digits: training images given a wrong label, the planted corner cases (default 15; "
                             "0 for none).")(command)


def _surprise_options(command):
    for decorator in reversed([
        click.option("--variant", type=click.Choice(VARIANTS), default=default_of(CornerSettings, "variant"),
                     show_default=True, help="Surprise measure."),
        click.option("--knn", type=click.IntRange(min=1), default=default_of(CornerSettings, "knn"),
                     show_default=True, help="DSA3: neighbours per class."),
        click.option("--trace-layer", "trace_layers", multiple=True,
                     help="Activation traces from this layer (repeat to concatenate; default: the logits)."),
        click.option("--reference-labels", type=click.Choice(["true", "pred"]),
                     default=default_of(CornerSettings, "reference_labels"), show_default=True),
        click.option("--target-labels", type=click.Choice(["true", "pred"]),
                     help=f"Label each image is scored under (default {default_of(CornerSettings, 'target_labels')}; "
                          "--parity: pred)."),
        click.option("--parity", is_flag=True,
                     help="The authors' choices: images scored under the model's prediction, dropout left on."),
        click.option("--exclude-self", is_flag=True, help="Leave each target's own trace out of its references."),
    ]):
        command = decorator(command)
    return command


def _deepfool_options(command):
    defaults = DeepFoolConfig()
    for decorator in reversed([
        click.option("--deepfool-mode", type=click.Choice(DEEPFOOL_MODES), default=defaults.mode, show_default=True,
                     help="lts4 = the authors' (no clipping); clip keeps images in [0, 1]."),
        click.option("--max-iter", type=click.IntRange(min=0), default=defaults.max_iter, show_default=True),
        click.option("--overshoot", type=click.FloatRange(min=0), default=defaults.overshoot, show_default=True),
    ]):
        command = decorator(command)
    return command


def _deepfool_config(mode, max_iter, overshoot, dropout_quirk=False) -> DeepFoolConfig:
    return DeepFoolConfig(mode=mode, max_iter=max_iter, overshoot=overshoot, train_mode=dropout_quirk)


def _settings(parity: bool, target_labels: str | None, **fields) -> CornerSettings:
    if target_labels is not None:
        fields["target_labels"] = target_labels
    return CornerSettings.authors(**fields) if parity else CornerSettings(**fields)


@click.group()
def corner() -> None:
    """Corner cases (surprise adequacy) and the DeepFool robustness radius (Ouyang et al. 2021)."""


@corner.command("run")
@dataset_options(tuple(CLASSIFICATION_DATASETS), "digits", DATASET_HELP)
@_planted_option
@click.option("--models", type=click.IntRange(min=1), help="Models per phase (default 4 on digits, 50 elsewhere).")
@click.option("--architecture", default=default_of(CornerSettings, "architecture"), show_default=True,
              help="What is trained: the authors' ConvNet (28x28 inputs), shapes_cnn, or a torchvision model by name "
                   "(resnet18, ...) for CIFAR-10 or an image folder.")
@click.option("--corner-cases", type=click.IntRange(min=1),
              help="Corner cases to remove (default: the planted count on digits, 200 elsewhere).")
@click.option("--per-model-k", type=click.IntRange(min=1), help="Nominations per model (default: --corner-cases).")
@_surprise_options
@_deepfool_options
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (default: the dataset's recipe).")
@click.option("--batch-size", type=click.IntRange(min=1), default=default_of(CornerSettings, "batch_size"),
              show_default=True, help="DeepFool and trace batches.")
@pass_options
def run_command(opts: GlobalOptions, dataset, data_dir, planted, models, architecture, corner_cases, per_model_k, variant, knn,
                trace_layers, reference_labels, target_labels, parity, exclude_self, deepfool_mode, max_iter,
                overshoot, epochs, batch_size) -> None:
    """Train M models, remove the corner cases they agree on, retrain, and compare the robustness radius."""
    from rtool.report.corner import format_comparison, write_corner_outputs

    device = resolve_device(opts.device)
    seed_everything(opts.seed)
    data = load_corner_data(dataset, data_dir, planted=planted, seed=opts.seed)
    default_k = int(data.planted.numel()) if data.planted is not None else 200
    settings = _settings(parity, target_labels, models=models or (4 if dataset == "digits" else 50),
                         architecture=architecture,
                         corner_cases=corner_cases or default_k, per_model_k=per_model_k, variant=variant, knn=knn,
                         layers=tuple(trace_layers) or ("logits",), reference_labels=reference_labels,
                         exclude_self=exclude_self, epochs=epochs, seed=opts.seed,
                         deepfool=_deepfool_config(deepfool_mode, max_iter, overshoot, dropout_quirk=parity),
                         batch_size=batch_size)
    out_dir = opts.out or Path("rtool-out") / "corner"
    result = rtool.corner.run(data.train, data.test, settings, device=device, out_dir=out_dir, quiet=opts.quiet,
                              planted=data.planted)
    if result is None:  # not rank 0 under torchrun
        return
    write_corner_outputs(result, data.train, out_dir)
    click.echo(f"{dataset}: {len(data.train)} training and {len(data.test)} test images; {settings.models} models "
               f"per phase ({settings.architecture}); removed {len(result.corner.indices)} corner cases ({settings.variant}, k={settings.knn})")
    click.echo(format_comparison(result))
    found = result.planted_found()
    if found is not None:
        click.echo(f"planted mislabelled images among the corner cases: {found[0]}/{found[1]}")
    click.echo(f"results: {out_dir}/ (models.csv, corner_cases.csv, summary.json, report.html)")


def _one_model_options(command):
    """--dataset/--data-dir/--planted and the model: --model with --weights (a checkpoint or named weights), or
    --model alone (default: the authors' ConvNet) trained here on the training split for --epochs."""
    for decorator in reversed([
        dataset_options(tuple(CLASSIFICATION_DATASETS), "digits", DATASET_HELP),
        _planted_option,
        model_options(layer_help="(unused)",
                      model_help="Architecture (default corner_convnet); without --weights it is trained here."),
        click.option("--epochs", type=click.IntRange(min=1), help="Training epochs of the default model."),
    ]):
        command = decorator(command)
    return command


def _data_and_model(opts: GlobalOptions, dataset, data_dir, planted, model_name, weights, num_classes, epochs):
    device = resolve_device(opts.device)
    seed_everything(opts.seed)
    data = load_corner_data(dataset, data_dir, planted=planted, seed=opts.seed)
    request = ModelRequest(model_name, weights, num_classes, None)
    model, name = load_corner_model(request, data, seed=opts.seed, epochs=epochs, device=device, quiet=opts.quiet)
    return device, inputs_for_model(data, request), model, name


@corner.command("dsa")
@_one_model_options
@_surprise_options
@click.option("--targets", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Score the training images (the authors') or the test images against the training set.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="Most surprising to print.")
@click.option("--batch-size", type=click.IntRange(min=1), default=default_of(CornerSettings, "batch_size"),
              show_default=True, help="Trace batches.")
@shard_size_option(CornerSettings)
@pass_options
def dsa_command(opts: GlobalOptions, dataset, data_dir, planted, model_name, weights, num_classes, layer, variant,
                knn, trace_layers, reference_labels, target_labels, parity, exclude_self, targets, epochs, top,
                batch_size, shard_size) -> None:
    """Surprise of every image of a dataset under one model (CSV, most surprising first in the printout)."""
    from rtool.report.corner import write_surprise_csv

    device, data, model, name = _data_and_model(opts, dataset, data_dir, planted, model_name, weights, num_classes,
                                                epochs)
    settings = _settings(parity, target_labels, variant=variant, knn=knn, layers=tuple(trace_layers) or ("logits",),
                         reference_labels=reference_labels, exclude_self=exclude_self, batch_size=batch_size,
                         shard_size=shard_size)
    target_data = data.train if targets == "train" else data.test
    out = opts.out or Path("rtool-out") / "corner-dsa"
    result = rtool.corner.dataset_surprise(model, data.train, None if targets == "train" else target_data, settings,
                                           device=device, out_dir=out, shard_size=shard_size, quiet=opts.quiet)
    if result is None:  # not rank 0 under torchrun
        return
    path = write_surprise_csv(result, target_data, out / "surprise.csv")
    order = result.scores.nan_to_num(nan=-float("inf")).argsort(descending=True, stable=True)
    click.echo(f"{variant} of {len(target_data)} {targets} images of {dataset} under {name}, scored under their "
               f"{'predicted' if settings.target_labels == 'pred' else 'own'} label "
               f"(references: {len(data.train)} training images by {reference_labels} label)")
    planted = set(data.planted.tolist()) if data.planted is not None and targets == "train" else set()
    for rank, i in enumerate(order[:top].tolist(), start=1):
        mark = "  (planted mislabel)" if i in planted else ""
        click.echo(f"{rank:>3}. image {i:>6}  label {int(target_data.labels[i])}  "
                   f"{variant} {float(result.scores[i]):.4f}{mark}")
    if planted:
        hits = sum(i in planted for i in order[:len(planted)].tolist())
        click.echo(f"planted mislabelled images among the {len(planted)} most surprising: {hits}/{len(planted)}")
    click.echo(f"results: {path}")


@corner.command("deepfool")
@_one_model_options
@_deepfool_options
@click.option("--batch-size", type=click.IntRange(min=1), default=default_of(CornerSettings, "batch_size"),
              show_default=True)
@shard_size_option(CornerSettings)
@pass_options
def deepfool_command(opts: GlobalOptions, dataset, data_dir, planted, model_name, weights, num_classes, layer,
                     deepfool_mode, max_iter, overshoot, epochs, batch_size, shard_size) -> None:
    """DeepFool robustness radius of a model on the test images (per-image CSV and the model's figures)."""
    from rtool.report.corner import write_radius_csv

    device, data, model, name = _data_and_model(opts, dataset, data_dir, planted, model_name, weights, num_classes,
                                                epochs)
    out = opts.out or Path("rtool-out") / "corner-deepfool"
    result = rtool.corner.dataset_radius(model, data.test, _deepfool_config(deepfool_mode, max_iter, overshoot),
                                         batch_size=batch_size, device=device, out_dir=out, shard_size=shard_size,
                                         quiet=opts.quiet)
    if result is None:  # not rank 0 under torchrun
        return
    path = write_radius_csv(result, out / "radius.csv")
    s = result.summary()
    click.echo(f"DeepFool ({deepfool_mode}) on {s.count} test images of {dataset} under {name}:")
    click.echo(f"mean radius {s.mean_radius:.4f}, median {s.median_radius:.4f}, rho_adv {s.rho_adv:.4f}, "
               f"converged {s.converged_fraction:.1%}")
    click.echo(f"results: {path}")
