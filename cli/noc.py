"""`rtool noc`: the 23 modelled corruptions of ImageNet-NOC (preview; mce and overlap are built on rtool.noc)."""
from __future__ import annotations

from pathlib import Path

import click

from rtool.engine import atomic_path
from rtool.errors import UsageError
from rtool.noc import CORRUPTIONS, MODES, preview_grid
from rtool_cli.context import GlobalOptions, pass_options


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
