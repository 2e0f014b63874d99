"""VOC-style XML box annotations (ImageNet bbox XMLs, Pascal VOC, the `folder` layout): parse, check, write.

XML comes from users, so it is parsed with defusedxml. Problems a dataset should count and skip (corrupt
XML, missing fields, boxes outside the image) raise `AnnotationError` with a short reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse as parse_xml


class AnnotationError(ValueError):
    """An annotation that cannot be used; str(err) is the reason a dataset records with the skip."""


@dataclass
class AnnotatedObject:
    name: str
    box: tuple[int, int, int, int]  # (xmin, ymin, xmax, ymax) as written in the file
    difficult: bool = False


@dataclass
class Annotation:
    filename: str
    width: int | None  # None when the file has no usable <size>
    height: int | None
    objects: list[AnnotatedObject] = field(default_factory=list)


def _number(node: Element, tag: str) -> int:
    text = node.findtext(tag)
    if text is None or not text.strip():
        raise AnnotationError(f"missing <{tag}>")
    try:
        # Some annotation tools write "12.0"; accept it and round to the nearest pixel.
        return int(round(float(text)))
    except ValueError:
        raise AnnotationError(f"<{tag}> is {text.strip()!r}, not a number") from None


def read_voc_xml(path: Path) -> Annotation:
    """Parse one VOC-style annotation file; every <object> with a <bndbox> is returned."""
    try:
        root = parse_xml(str(path)).getroot()
    except (ParseError, DefusedXmlException) as err:
        raise AnnotationError(f"corrupt XML ({err})") from None
    except OSError as err:
        raise AnnotationError(f"unreadable XML ({err.strerror or err})") from None
    if root.tag != "annotation":
        raise AnnotationError(f"root element is <{root.tag}>, expected <annotation>")
    width = height = None
    size = root.find("size")
    if size is not None:
        try:
            width, height = _number(size, "width"), _number(size, "height")
        except AnnotationError:
            width = height = None
        if not width or not height or width <= 0 or height <= 0:
            width = height = None  # a 0x0 size appears in some real files: treat as unknown
    objects = []
    for node in root.iter("object"):
        bndbox = node.find("bndbox")
        if bndbox is None:
            continue
        box = tuple(_number(bndbox, tag) for tag in ("xmin", "ymin", "xmax", "ymax"))
        difficult = (node.findtext("difficult") or "0").strip() in ("1", "true", "True")
        objects.append(AnnotatedObject(name=(node.findtext("name") or "").strip(), box=box, difficult=difficult))
    return Annotation(filename=(root.findtext("filename") or "").strip(), width=width, height=height,
                      objects=objects)


def box_problem(box: tuple[int, int, int, int], width: int | None, height: int | None) -> str | None:
    """Why a half-open box (original pixels) cannot be used, or None when it can.

    Negative lower ends are allowed (they clamp to 0); a box that is empty after clamping, or that
    reaches past the image size, is not.
    """
    xmin, ymin, xmax, ymax = box
    if xmax <= max(xmin, 0) or ymax <= max(ymin, 0):
        return f"empty box {list(box)}"
    if width is not None and height is not None and (xmax > width or ymax > height):
        return f"box {list(box)} outside the {width}x{height} image"
    return None


def write_voc_xml(path: Path, filename: str, width: int, height: int,
                  objects: list[AnnotatedObject], folder: str = "") -> None:
    """Write a minimal VOC-style annotation (the format `read_voc_xml` and labelImg-style tools read)."""
    parts = [
        "<annotation>",
        f"  <folder>{escape(folder)}</folder>",
        f"  <filename>{escape(filename)}</filename>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = (int(v) for v in obj.box)
        parts += [
            "  <object>",
            f"    <name>{escape(obj.name)}</name>",
            f"    <difficult>{int(obj.difficult)}</difficult>",
            f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
            "  </object>",
        ]
    parts.append("</annotation>\n")
    Path(path).write_text("\n".join(parts), encoding="utf-8")
