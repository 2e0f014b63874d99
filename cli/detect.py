"""`rtool detect`: find the predictions to distrust (layer conductance + label change rate of mutants)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
import torch

from rtool.corner.inputs import inputs_for_model, load_corner_data, load_corner_model
from rtool.data import CLASSIFICATION_DATASETS
from rtool.detect import METHODS, OPERATORS, DetectorSettings, DetectSettings, MutationSettings
from rtool.detect.experiment import detect_layer, split_features, split_validation, validation_mutants
from rtool.detect.fitted import SCORES
from rtool.engine import resolve_device, seed_everything
from rtool.errors import UsageError
from rtool.models import ModelRequest, build_model, input_normalization
from rtool_cli.context import GlobalOptions, pass_options
from rtool_cli.options import dataset_options, default_of, model_options, shard_size_option

DATASET_HELP = "digits = scikit-learn's digits at 28x28 (embedded, no files needed), with the corner ConvNet."
SPLITS = ("test", "val", "train")
DETECTOR_FILE = "detector.pt"


def _out(opts: GlobalOptions) -> Path:
    return opts.out or Path("rtool-out") / "detect"


def _data_options(command):
    for decorator in reversed([
        dataset_options(tuple(CLASSIFICATION_DATASETS), "digits", DATASET_HELP),
        click.option("--classes", help="imagenet: the classes to load, wnids or indices (e.g. n01440764,1,2); "
                                       "default every class folder under --data-dir/train and val."),
        model_options(layer_help="Layer whose conductance is used (default: the model's TARGET_LAYER, conv2 "
                                 "for the digits ConvNet)."),
        click.option("--epochs", type=click.IntRange(min=1),
                     help="Training epochs of the default ConvNet (default: the dataset's recipe; cached)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=default_of(DetectSettings, "batch_size"),
                     show_default=True, help="Inputs per conductance pass."),
        shard_size_option(DetectSettings, "Inputs"),
    ]):
        command = decorator(command)
    return command


def _detector_option(command):
    return click.option("--detector", "detector_path", type=click.Path(path_type=Path),
                        help=f"Detector file from `rtool detect fit` (default: <out>/{DETECTOR_FILE}).")(command)


def _load(opts: GlobalOptions, dataset, data_dir, classes, model_name, weights, num_classes, epochs, *,
          need_data=True):
    """(device, data or None, model, model name). With torchvision's named weights the images are normalised as
    those weights expect (`inputs_for_model`)."""
    device = resolve_device(opts.device)
    seed_everything(opts.seed)
    if model_name is not None and not need_data:
        return device, None, build_model(model_name, weights, num_classes).to(device).eval(), model_name
    options = {"classes": tuple(c.strip() for c in classes.split(",") if c.strip())} if classes else {}
    if options and dataset != "imagenet":
        raise UsageError(f"--classes applies to --dataset imagenet, not {dataset}")
    data = load_corner_data(dataset, data_dir, planted=0, seed=opts.seed, **options)
    request = ModelRequest(model_name, weights, num_classes, None)
    model, name = load_corner_model(request, data, seed=opts.seed, epochs=epochs, device=device, quiet=opts.quiet)
    return device, inputs_for_model(data, request), model, name


def _load_fitted(opts: GlobalOptions, detector_path: Path | None, model, layer: str | None):
    """The saved detector (default <out>/detector.pt), checked against the model and the --layer option."""
    from rtool.detect.saved import load_detector

    path = detector_path or _out(opts) / DETECTOR_FILE
    fitted = load_detector(path)
    fitted.check_model(model, f"detector file {path}")
    _check_layer_option(layer, fitted)
    return fitted


def _labelled_split(data, split: str, settings: DetectSettings):
    if split == "train":
        return data.train
    val, test = split_validation(data.test, settings)
    return val if split == "val" else test


@click.group()
def detect() -> None:
    """Find the predictions to distrust: layer conductance + label change rate of mutants (Wu et al. 2019)."""


@detect.command("fit")
@_data_options
@click.option("--n-steps", type=click.IntRange(min=1), default=default_of(DetectSettings, "n_steps"),
              show_default=True, help="Conductance integration steps (unused by the closed form).")
@click.option("--method", type=click.Choice(METHODS), default=default_of(DetectSettings, "method"),
              show_default=True, help="auto = the exact closed form where the layer feeds GAP + Linear, else right.")
@click.option("--operator", type=click.Choice(OPERATORS), default=default_of(MutationSettings, "operator"),
              show_default=True, help="Mutation operator.")
@click.option("--gamma", type=click.FloatRange(0, 1, min_open=True),
              default=default_of(DetectSettings, "mutation").gamma, show_default=True,
              help="Fraction of the conv filters each mutant changes.")
@click.option("--mutants", type=click.IntRange(min=1), default=default_of(MutationSettings, "target_mutants"),
              show_default=True, help="Accepted mutants wanted (LCR is a multiple of 1/mutants).")
@click.option("--accept-ratio", type=click.FloatRange(0, 1), default=default_of(MutationSettings, "accept_ratio"),
              show_default=True, help="Keep a mutant with validation accuracy >= ratio x the model's.")
@click.option("--max-candidates", type=click.IntRange(min=1), default=default_of(MutationSettings, "max_candidates"),
              show_default=True)
@click.option("--detector-epochs", type=click.IntRange(min=1), default=default_of(DetectorSettings, "epochs"),
              show_default=True, help="Epochs of the conductance MLP.")
@click.option("--combined-epochs", type=click.IntRange(min=1), default=default_of(DetectSettings, "combined").epochs,
              show_default=True, help="Epochs of the combiner on [LCR, conductance MLP output].")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=default_of(DetectSettings, "val_fraction"), show_default=True,
              help="Share of the test split used for validation (mutants, combiner, thresholds).")
@pass_options
def fit_command(opts: GlobalOptions, dataset, data_dir, classes, model_name, weights, num_classes, layer, epochs,
                batch_size, shard_size, n_steps, method, operator, gamma, mutants, accept_ratio, max_candidates,
                detector_epochs, combined_epochs, val_fraction) -> None:
    """Features and detectors for a model and dataset, saved to <out>/detector.pt with all it needs to reload."""
    from rtool.detect.fitted import fit
    from rtool.detect.saved import save_detector
    from rtool.report.detect import format_metrics_table

    device, data, model, name = _load(opts, dataset, data_dir, classes, model_name, weights, num_classes, epochs)
    defaults = DetectSettings()
    settings = DetectSettings(
        layer=layer, n_steps=n_steps, method=method, val_fraction=val_fraction, seed=opts.seed,
        batch_size=batch_size, shard_size=shard_size,
        mutation=replace(defaults.mutation, operator=operator, gamma=gamma, target_mutants=mutants,
                         accept_ratio=accept_ratio, max_candidates=max_candidates, seed=opts.seed),
        detector=replace(defaults.detector, epochs=detector_epochs, seed=opts.seed),
        combined=replace(defaults.combined, epochs=combined_epochs, seed=opts.seed))
    layer_name = detect_layer(model, settings)  # a bad layer fails before any work
    out = _out(opts)
    val_data, test_data = split_validation(data.test, settings)
    accepted = validation_mutants(model, val_data, settings, out_dir=out, quiet=opts.quiet)
    train_f = split_features(model, data.train, "train", layer_name, accepted, settings, out_dir=out,
                             quiet=opts.quiet)
    val_f = split_features(model, val_data, "val", layer_name, accepted, settings, out_dir=out, quiet=opts.quiet)
    if train_f is None or val_f is None:  # not rank 0 under torchrun: rank 0 fits and writes
        return
    identity = {"model": name, "weights": str(weights), "dataset": dataset,
                "data_dir": str(data_dir) if data_dir else "", "class_names": list(data.train.class_names),
                "image_shape": list(data.train.image_shape), "train_images": len(data.train),
                "val_images": len(val_data), "test_images": len(test_data)}
    fitted = fit(train_f, val_f, settings, layer_name, accepted, model, identity)
    path = save_detector(fitted, out / DETECTOR_FILE)
    s = accepted.settings
    click.echo(f"{dataset}: {len(data.train)} training, {len(val_data)} validation and {len(test_data)} test "
               f"images; {name}, layer {layer_name} ({_method_text(fitted)})")
    click.echo(f"mutants: {len(accepted.seeds)} {s.operator} (gamma {s.gamma:g}) accepted of "
               f"{accepted.candidates_drawn} drawn (validation accuracy >= {s.accept_ratio:g} x "
               f"{accepted.original_accuracy:.3f})")
    click.echo(f"wrong predictions: {int(train_f.wrong.sum())} of {len(train_f)} training (the conductance MLP's "
               f"positives), {int(val_f.wrong.sum())} of {len(val_f)} validation")
    click.echo("on the validation half (thresholds chosen here; combined out of fold):")
    click.echo(format_metrics_table(fitted.val_metrics))
    click.echo(f"detector: {path}  (next: rtool detect eval)")


def _method_text(fitted) -> str:
    if fitted.conductance_method == "closed_form":
        return "exact closed-form conductance: the layer feeds GAP + Linear"
    return f"{fitted.conductance_method} conductance, {fitted.settings.n_steps} steps"


@detect.command("eval")
@_data_options
@_detector_option
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True,
              help="test = the held-out half of the test split; val = the half the thresholds were chosen on.")
@pass_options
def eval_command(opts: GlobalOptions, dataset, data_dir, classes, model_name, weights, num_classes, layer, epochs,
                 batch_size, shard_size, detector_path, split) -> None:
    """Metrics of every detector and the baselines on a split, with the ROC and risk-coverage figures."""
    from rtool.detect.fitted import evaluate
    from rtool.report.detect import caught_line, format_metrics_table, write_eval_outputs

    device, data, model, name = _load(opts, dataset, data_dir, classes, model_name, weights, num_classes, epochs)
    out = _out(opts)
    fitted = _load_fitted(opts, detector_path, model, layer)
    settings = replace(fitted.settings, batch_size=batch_size, shard_size=shard_size)
    chosen = _labelled_split(data, split, settings)
    feats = split_features(model, chosen, split, fitted.layer, fitted.mutants, settings, out_dir=out,
                           quiet=opts.quiet)
    if feats is None:
        return
    evaluation = evaluate(fitted, feats, split)
    write_eval_outputs(evaluation, fitted, out)
    click.echo(f"{split} {'half of the test split' if split != 'train' else 'split'} of {dataset}: "
               f"{len(feats)} images, {name} accuracy {evaluation.accuracy:.1%} ({int(feats.wrong.sum())} wrong); "
               f"layer {fitted.layer}, {len(fitted.mutants.seeds)} mutants")
    click.echo(format_metrics_table(evaluation.metrics))
    click.echo(caught_line(evaluation))
    click.echo(f"results: {out}/ (metrics.csv, metrics.json, roc.png, risk_coverage.png, report.html)")


def _check_layer_option(layer: str | None, fitted) -> None:
    if layer is not None and layer != fitted.layer:
        raise UsageError(f"--layer {layer}: the detector was fitted on layer {fitted.layer!r}; expected no --layer "
                         f"or that one")


@detect.command("predict")
@_data_options
@_detector_option
@click.option("--images", "images_dir", type=click.Path(path_type=Path),
              help="A folder of images to score (every image file below it); default: --split of the dataset.")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--score", type=click.Choice(SCORES), default="combined", show_default=True,
              help="Which detector (or baseline) decides accept/cancel.")
@pass_options
def predict_command(opts: GlobalOptions, dataset, data_dir, classes, model_name, weights, num_classes, layer, epochs,
                    batch_size, shard_size, detector_path, images_dir, split, score) -> None:
    """Prediction, score and accept/cancel of new images (a folder, or a dataset split) as CSV."""
    from rtool.data.image_files import load_image_files
    from rtool.detect.sharded import sharded_features, tensor_fingerprint
    from rtool.report.detect import write_predictions_csv

    if images_dir is not None and not Path(images_dir).expanduser().is_dir():
        raise UsageError(f"--images {images_dir}: no such directory; expected a folder of image files")
    device, data, model, name = _load(opts, dataset, data_dir, classes, model_name, weights, num_classes, epochs,
                                      need_data=images_dir is None)
    out = _out(opts)
    fitted = _load_fitted(opts, detector_path, model, layer)
    settings = replace(fitted.settings, batch_size=batch_size, shard_size=shard_size)
    if images_dir is not None:
        files = load_image_files(images_dir, tuple(fitted.identity["image_shape"]))
        images, keys, labels, what = files.images, files.keys, None, f"{len(files.keys)} images in {images_dir}"
        stats = input_normalization(model_name, weights) if model_name else None
        if stats is not None:  # the model takes images normalised as its weights expect, like the dataset's
            mean, std = (torch.tensor(v, dtype=images.dtype).view(1, -1, 1, 1) for v in stats)
            images = (images - mean) / std
        feats = sharded_features(model, images, torch.zeros(len(keys), dtype=torch.long),
                                 settings.conductance(fitted.layer), fitted.mutants,
                                 data_key=tensor_fingerprint(images), split="predict",
                                 batch_size=settings.batch_size, shard_size=settings.shard_size, out_dir=out,
                                 quiet=opts.quiet)
        skipped = len(files.skipped)
    else:
        chosen = _labelled_split(data, split, settings)
        keys = [str(int(i)) for i in chosen.indices]
        part = "split" if split == "train" else "half of the test split"
        labels, what, skipped = chosen.labels, f"{len(chosen)} images of the {split} {part} of {dataset}", 0
        feats = split_features(model, chosen, split, fitted.layer, fitted.mutants, settings, out_dir=out,
                               quiet=opts.quiet)
    if feats is None:
        return
    scores, accept = fitted.decide(feats, score)
    csv_path = write_predictions_csv(out / "predictions.csv", keys, feats.predictions, scores, accept, labels,
                                     fitted.identity.get("class_names"))
    click.echo(f"{what}: {int((~accept).sum())} of {len(keys)} predictions cancelled by {score} "
               f"(threshold {fitted.thresholds[score]:.4g})" + (f"; {skipped} unreadable files skipped"
                                                                if skipped else ""))
    if labels is not None:
        wrong = feats.predictions != labels
        click.echo(f"wrong predictions caught: {int((wrong & ~accept).sum())}/{int(wrong.sum())}; accuracy "
                   f"{float((~wrong).double().mean()):.1%} -> "
                   f"{float((~wrong[accept]).double().mean()) if accept.any() else float('nan'):.1%} on the accepted")
    click.echo(f"results: {csv_path}")


@detect.command("export")
@_data_options
@_detector_option
@click.option("--output", type=click.Path(path_type=Path), help="Where to write (default: <out>/detector.jit.pt).")
@pass_options
def export_command(opts: GlobalOptions, dataset, data_dir, classes, model_name, weights, num_classes, layer, epochs,
                   batch_size, shard_size, detector_path, output) -> None:
    """The conductance detector and the model as one TorchScript module: images -> prediction, score, accept."""
    from rtool.detect.export import export_detector
    from rtool.engine import atomic_path

    device, data, model, name = _load(opts, dataset, data_dir, classes, model_name, weights, num_classes, epochs)
    out = _out(opts)
    fitted = _load_fitted(opts, detector_path, model, layer)
    scripted = export_detector(model.cpu(), fitted.layer, fitted.conductance_detector,
                               fitted.thresholds["conductance"], torch.zeros(fitted.identity["image_shape"]),
                               method=fitted.conductance_method, n_steps=fitted.settings.n_steps)
    target = output or out / "detector.jit.pt"
    with atomic_path(target) as tmp:
        scripted.save(str(tmp))
    click.echo(f"exported the conductance detector on {name} layer {fitted.layer} ({_method_text(fitted)}; "
               f"threshold {fitted.thresholds['conductance']:.4g}): {target}")
    click.echo("load it with torch.jit.load(path); module(images) -> (prediction, P(wrong), accept)"
               + ("" if fitted.conductance_method == "closed_form" else "; call it with gradients enabled"))
