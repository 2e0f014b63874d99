"""`rtool noc`: the 23 modelled corruptions of ImageNet-NOC (preview), the mCE benchmarks (mce) and the
overlapping score (overlap)."""
from __future__ import annotations

from pathlib import Path

import click

from rtool.data.shapes import ShapesConfig
from rtool.engine import atomic_path, resolve_device, seed_everything
from rtool.errors import UsageError
from rtool.models import ModelRequest
from rtool.noc import CE_FORMS, CORRUPTIONS, MODES, PRESETS, ImageNetCSettings, MceSettings, preview_grid
from rtool.noc.inputs import MCE_DATASETS, prepare_mce_inputs
from rtool.noc.references import IMAGENET_C_REFERENCE
from rtool_cli.context import GlobalOptions, pass_options
from rtool_cli.options import batch_size_option, dataset_options, default_of, model_options, shard_size_option


def load_image(path: Path, size: int | None):
    """An RGB image file as a float tensor [3, H, W] in [0, 1], optionally resized (shorter side) and
    centre-cropped to size x size."""
    import PIL
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    try:
        with Image.open(path) as handle:
            image = handle.convert("RGB")
    except FileNotFoundError:
        raise UsageError(f"image {str(path)!r} does not exist") from None
    except (PIL.UnidentifiedImageError, OSError, ValueError) as error:
        raise UsageError(f"image {str(path)!r} could not be read as an image ({type(error).__name__})") from None
    tensor = TF.to_dtype(TF.pil_to_tensor(image), scale=True)
    if size is not None:
        tensor = TF.center_crop(TF.resize(tensor, size, antialias=True), [size, size])
    return tensor


def parse_names(text: str | None) -> tuple[str, ...]:
    if not text:
        return CORRUPTIONS
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise UsageError(f"--corruptions: unknown corruption {unknown[0]!r}; expected names from {', '.join(CORRUPTIONS)}")
    return names


@click.group()
def noc() -> None:
    """ImageNet-NOC: 23 modelled common corruptions (spec noc.md)."""


@noc.command()
@click.argument("image", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--size", type=click.IntRange(min=16), default=224, show_default=True,
              help="Resize the shorter side and centre-crop to SIZE x SIZE first.")
@click.option("--keep-size", is_flag=True, help="Do not resize or crop the image.")
@click.option("--mode", type=click.Choice(MODES), default="pil_exact", show_default=True)
@click.option("--corruptions", help="Comma-separated subset (default: all 23, in the paper's order).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="PNG to write (default: <out>/noc/preview.png).")
@pass_options
def preview(opts: GlobalOptions, image: Path, size: int, keep_size: bool, mode: str, corruptions: str | None,
            output: Path | None) -> None:
    """Write one PNG grid of IMAGE under each corruption at low, middle and high severity.

    Rows: severity 0 (mildest end of the range), 0.5 and 1 (harshest); the first column is the clean image.
    """
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    names = parse_names(corruptions)
    tensor = load_image(image, None if keep_size else size)
    if min(tensor.shape[-2:]) < 16:
        raise UsageError(f"image {str(image)!r} is {tensor.shape[1]}x{tensor.shape[2]}; expected at least 16x16")
    grid = preview_grid(tensor, seed=opts.seed, mode=mode, names=names)
    target = output or (opts.out or Path("rtool-out")) / "noc" / "preview.png"
    pil = TF.to_pil_image((grid.clamp(0, 1) * 255).round().byte())
    with atomic_path(target) as tmp:
        pil.save(tmp, format="PNG")
    click.echo(f"wrote {target} ({len(names)} corruptions x 3 severities, mode {mode})")
    click.echo("columns: clean, " + ", ".join(names))


@noc.command()
@dataset_options(MCE_DATASETS, "shapes",
                 "shapes = embedded generated data and its trained CNN (no files needed); imagenet = val class "
                 "folders; imagenet-c = <corruption>/<1-5>/<wnid>/ folders.")
@model_options("Not used by mce.")
@click.option("--preset", type=click.Choice(tuple(PRESETS)), default=default_of(MceSettings, "preset"),
              show_default=True, help="noc8 = the paper's eight; noc7-code = the seven its code evaluates.")
@click.option("--corruptions", help="Comma-separated corruptions instead of the preset (imagenet-c: folder names).")
@click.option("--ce-form", type=click.Choice(CE_FORMS),
              help="relative (default for NOC: clean error subtracted) or absolute (ImageNet-C's, its default).")
@click.option("--reference",
              help="alexnet-2020 (default), resnet50-2020-draft or measure:<model>; imagenet-c: alexnet-2019 "
                   "(default, the ImageNet-C authors' AlexNet errors) or measure:<model>.")
@click.option("--reference-weights", help="Weights of a measure:<model> reference (default: --weights).")
@click.option("--mode", type=click.Choice(MODES), default=default_of(MceSettings, "mode"), show_default=True)
@click.option("--image-size", type=click.IntRange(min=16), help="Crop side (default: the model's).")
@click.option("--limit-per-class", type=click.IntRange(min=1), help="Score at most N images per class.")
@batch_size_option(MceSettings, "Images per forward pass.")
@shard_size_option(MceSettings)
@click.option("--workers", type=click.IntRange(min=0), default=default_of(MceSettings, "workers"), show_default=True,
              help="Image-decoding processes (imagenet, imagenet-c).")
@pass_options
def mce(opts: GlobalOptions, dataset, data_dir, model_name, weights, num_classes, layer, preset, corruptions, ce_form,
        reference, reference_weights, mode, image_size, limit_per_class, batch_size, shard_size, workers) -> None:
    """Corruption errors and mCE: ImageNet-NOC (random-severity corruptions, CE vs a reference) or ImageNet-C.

    CE 100 = as robust as the reference; lower is better.
    """
    import rtool.noc
    from rtool.report import prepare_out_dir
    from rtool.report.noc import format_scores_table, write_mce_outputs

    device = resolve_device(opts.device)
    seed_everything(opts.seed)
    imagenet_c = dataset == "imagenet-c"
    names = parse_folder_names(corruptions) if imagenet_c else (parse_names(corruptions) if corruptions else None)
    common = {"batch_size": batch_size, "shard_size": shard_size, "workers": workers}
    if imagenet_c:
        settings = ImageNetCSettings(corruptions=names, ce_form=ce_form or "absolute",
                                     reference=reference or IMAGENET_C_REFERENCE, **common)
    else:
        settings = MceSettings(preset=preset, corruptions=names, ce_form=ce_form or "relative",
                               reference=reference or default_of(MceSettings, "reference"), mode=mode,
                               seed=opts.seed, **common)
    out_dir = prepare_out_dir(opts.out or Path("rtool-out") / "noc-mce")
    inputs = prepare_mce_inputs(dataset, data_dir, ModelRequest(model_name, weights, num_classes),
                                shapes=ShapesConfig(seed=opts.seed),
                                reference=settings.reference, reference_weights=reference_weights,
                                image_size=image_size, limit_per_class=limit_per_class, corruptions=names,
                                device=device, quiet=opts.quiet)
    run = rtool.noc.run_imagenet_c if imagenet_c else rtool.noc.run_mce
    result = run(inputs.model, inputs.sources if imagenet_c else inputs.source, settings,
                 reference_model=inputs.reference_model, device=device, out_dir=out_dir, quiet=opts.quiet,
                 model_name=inputs.model_name, reference_name=inputs.reference_name, identity=inputs.identity)
    if result is None:  # not rank 0 under torchrun
        return
    write_mce_outputs(result, out_dir)
    if imagenet_c:
        click.echo(f"ImageNet-C: {len(result.scores)} corruptions x 5 severities, {result.n_images} images in all "
                   f"({inputs.model_name}); CE = 100 sum of errors over severities / {settings.reference}'s")
    else:
        preset_text = "--corruptions" if names else settings.preset
        click.echo(f"ImageNet-NOC ({preset_text}, mode {settings.mode}, seed {settings.seed}) on {result.n_images} "
                   f"images ({inputs.model_name}); {settings.ce_form} CE vs {settings.reference}")
    click.echo(format_scores_table(result))
    if result.clean_error is not None:
        mean_error = sum(s.error for s in result.scores) / len(result.scores)
        click.echo(f"clean error {100 * result.clean_error:.1f}%, mean error under corruption {100 * mean_error:.1f}%; "
                   f"mCE {result.mce:.1f} (100 = as robust as the reference, lower is better)")
    else:
        click.echo(f"mCE {result.mce:.1f} over {len(result.scores) - len(result.undefined)} corruption(s) "
                   "(100 = as robust as AlexNet, lower is better)")
    if result.undefined:
        click.echo(f"CE undefined (left out of the mCE): {', '.join(result.undefined)}")
    click.echo(f"results: {out_dir}/ (corruptions.csv, summary.json, ce.png, report.html)")


def parse_folder_names(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise UsageError(f"--corruptions {text!r}: expected comma-separated ImageNet-C folder names")
    return names


# ------------------------------------------------------------------------------------------ rtool noc overlap

def _overlap_defaults():
    from rtool.noc.overlap import OverlapSettings
    return OverlapSettings()


@noc.command("overlap")
@click.option("--corruptions", "corruption_list",
              default=",".join(_overlap_defaults().corruptions), show_default=True,
              help="Comma-separated corruptions to train on and test with, or 'all' for the 23.")
@click.option("--dataset", type=click.Choice(("shapes", "digits", "mnist", "cifar10", "folder", "imagenet")),
              default="shapes", show_default=True,
              help="shapes = the embedded generated data (no files needed); imagenet = class folders (the paper's "
                   "ImageNet-100 is a class subset).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Dataset root (mnist, cifar10, folder, imagenet).")
@click.option("--classes", help="imagenet: the classes, wnids or indices (default every class folder).")
@click.option("--image-size", type=int,
              help="Image side S: shapes (default 32), folder (default 64), imagenet (default 224).")
@click.option("--train-per-class", type=int, default=400, show_default=True, help="shapes: training images per class.")
@click.option("--test-per-class", type=int, default=100, show_default=True, help="shapes: test images per class.")
@click.option("--model", "model_name", default=_overlap_defaults().model, show_default=True,
              help="Architecture trained from scratch (shapes_cnn, resnet18 as the paper, ...).")
@click.option("--epochs", type=int, default=_overlap_defaults().epochs, show_default=True,
              help="Epochs per model (the paper: 40).")
@click.option("--batch-size", type=int, default=_overlap_defaults().batch_size, show_default=True,
              help="Training batch size (the paper: 256).")
@click.option("--optimizer", type=click.Choice(("sgd-step", "adamw-onecycle")), default=_overlap_defaults().optimizer,
              show_default=True, help="sgd-step = the paper's SGD with lr x0.1 at 50% and 75% of the epochs.")
@click.option("--init", type=click.Choice(("model", "paper")), default=_overlap_defaults().init, show_default=True,
              help="paper = Xavier conv/linear weights, BN weight ~N(1, 0.02) (train.py).")
@click.option("--lr", type=float, help="Peak learning rate (default: 0.1 for sgd-step, 3e-3 for adamw-onecycle).")
@click.option("--mode", type=click.Choice(MODES), default=_overlap_defaults().mode, show_default=True,
              help="Corruption mode (pil_exact reproduces the 8-bit PIL steps).")
@click.option("--form", type=click.Choice(("standard", "bmvc2021")), default=_overlap_defaults().form,
              show_default=True,
              help="standard = on accuracy ratios to clean (NOC paper); bmvc2021 = on raw accuracies.")
@pass_options
def overlap_command(opts: GlobalOptions, corruption_list, dataset, data_dir, classes, image_size, train_per_class,
                    test_per_class, model_name, epochs, batch_size, optimizer, init, lr, mode, form) -> None:
    """Train one model per corruption plus a clean one, fill the accuracy matrix and score how much each pair
    of corruptions overlaps (spec noc.md §4). Models and matrix cells are kept under --out; a rerun resumes."""
    from rtool.data import load_classification
    from rtool.engine import cleanup, resolve_device
    from rtool.noc.overlap import OverlapSettings, run_overlap, shapes_overlap_data
    from rtool.report.noc.overlap import format_overlap_text, write_overlap_outputs
    from rtool.report.outputs import prepare_out_dir

    text = corruption_list.strip()
    names = CORRUPTIONS if text == "all" else tuple(p.strip() for p in text.split(",") if p.strip())
    for option, value in (("--epochs", epochs), ("--batch-size", batch_size), ("--train-per-class", train_per_class),
                          ("--test-per-class", test_per_class)):
        if value < 1:
            raise UsageError(f"{option} {value}: expected a positive integer")
    if image_size is not None and image_size < 16:
        raise UsageError(f"--image-size {image_size}: expected at least 16 (the corruptions' smallest side)")
    settings = OverlapSettings(corruptions=names, model=model_name, epochs=epochs, batch_size=batch_size,
                               optimizer=optimizer, init=init, lr=lr, mode=mode, form=form, seed=opts.seed)
    if dataset == "shapes":
        if data_dir is not None:
            raise UsageError("--data-dir: the shapes dataset is generated; drop --data-dir or pick another --dataset")
        train, test = shapes_overlap_data(train_per_class, test_per_class, image_size or 32, seed=opts.seed)
    else:
        options = {"image_size": image_size or 64, "channels": 3} if dataset == "folder" else {}
        if dataset == "imagenet":
            options = {"image_size": image_size or 224}
            if classes:
                options["classes"] = tuple(c.strip() for c in classes.split(",") if c.strip())
        elif image_size is not None and dataset != "folder":
            raise UsageError(f"--image-size applies to shapes, folder and imagenet, not {dataset}")
        if classes and dataset != "imagenet":
            raise UsageError(f"--classes applies to --dataset imagenet, not {dataset}")
        train = load_classification(dataset, data_dir, "train", **options)
        test = load_classification(dataset, data_dir, "test", **options)
    out_dir = prepare_out_dir(opts.out or Path("rtool-out") / "noc-overlap")
    result = run_overlap(train, test, settings, out_dir=out_dir, device=resolve_device(opts.device), quiet=opts.quiet)
    cleanup()
    if result is None:  # not rank 0 under torchrun
        return
    write_overlap_outputs(result, out_dir)
    click.echo(f"{len(result.conditions)} models ({settings.model}, {settings.epochs} epochs, {len(train)} training "
               f"images) x {len(result.conditions)} test conditions ({result.total} test images); trained "
               f"{len(result.trained)} this run, {len(result.conditions) - len(result.trained)} loaded")
    click.echo(format_overlap_text(result))
    click.echo(f"results: {out_dir}/ (accuracy.csv, overlap_standard.csv, overlap_bmvc2021.csv, summary.json, "
               f"report.html)")
