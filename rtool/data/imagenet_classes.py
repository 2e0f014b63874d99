"""ImageNet-1k class metadata: index <-> wnid <-> label text, and the authors' CSV class names.

The standard order ships with rtool as `imagenet_classes.tsv` (index, wnid, label; generated once from the
WordNet synset lists distributed with timm). Users may bring their own map instead: the authors' JSON
(entries with `id` like "01440764-n" and `label`), a Keras-style JSON ({"0": ["n01440764", "tench"]}),
Kaggle's `LOC_synset_mapping.txt` ("n01440764 tench, Tinca tinca" per line) or a tsv like ours.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rtool.errors import UsageError

_WNID = re.compile(r"^n\d{8}$")
# The one label whose spelling in the authors' class map differs from WordNet's (checked against all
# 1000 names of the published CSVs): their name for class 607 has no apostrophe.
_AUTHOR_SPELLINGS = {"jack-o'-lantern": "jack-o-lantern"}


def csv_name(label: str) -> str:
    """Class name as the authors' CSVs print it: spaces -> "_", commas -> "__" ("tench, Tinca tinca" -> "tench___Tinca_tinca")."""
    label = _AUTHOR_SPELLINGS.get(label, label)
    return label.replace(" ", "_").replace(",", "__")


@dataclass(frozen=True)
class ImageNetClasses:
    wnids: tuple[str, ...]
    labels: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.wnids) != len(self.labels):
            raise UsageError(f"class map has {len(self.wnids)} wnids but {len(self.labels)} labels; expected one label per wnid")
        index: dict[str, int] = {}
        for i, wnid in enumerate(self.wnids):
            if not _WNID.match(wnid):
                raise UsageError(f"class map entry {i}: wnid {wnid!r} is not like 'n01440764'")
            if wnid in index:
                raise UsageError(f"class map entry {i}: wnid {wnid} repeats entry {index[wnid]}; expected unique wnids")
            index[wnid] = i
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.wnids)

    def __contains__(self, wnid: str) -> bool:
        return wnid in self._index

    def index(self, wnid: str) -> int:
        try:
            return self._index[wnid]
        except KeyError:
            raise UsageError(f"wnid {wnid!r} is not in the class map ({len(self)} classes)") from None

    def csv_names(self) -> list[str]:
        return [csv_name(label) for label in self.labels]


def _from_tsv(text: str, source: str) -> ImageNetClasses:
    wnids, labels = [], []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("index\t"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) != len(wnids):
            raise UsageError(f"{source} line {line_no}: {line!r}; expected 'index<TAB>wnid<TAB>label' in index order")
        wnids.append(parts[1])
        labels.append(parts[2])
    return ImageNetClasses(tuple(wnids), tuple(labels))


def _from_synset_mapping(text: str, source: str) -> ImageNetClasses:
    wnids, labels = [], []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, label = line.strip().partition(" ")
        if not _WNID.match(wnid):
            raise UsageError(f"{source} line {line_no}: {line!r}; expected 'n01440764 tench, Tinca tinca'")
        wnids.append(wnid)
        labels.append(label.strip())
    return ImageNetClasses(tuple(wnids), tuple(labels))


def _json_entry(entry, where: str) -> tuple[str, str]:
    if isinstance(entry, dict) and "id" in entry and "label" in entry:
        offset, _, pos = str(entry["id"]).partition("-")  # "01440764-n" -> "n01440764"
        return f"{pos or 'n'}{offset}", str(entry["label"])
    if isinstance(entry, (list, tuple)) and len(entry) == 2:
        return str(entry[0]), str(entry[1])
    raise UsageError(f"{where}: {str(entry)[:80]!r}; expected {{'id': '01440764-n', 'label': '...'}} or ['n01440764', 'tench']")


def _from_json(text: str, source: str) -> ImageNetClasses:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{source}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, dict):
        try:
            items = sorted(data.items(), key=lambda kv: int(kv[0]))
        except ValueError:
            raise UsageError(f"{source}: keys must be class indices 0..N-1") from None
        if [int(k) for k, _ in items] != list(range(len(items))):
            raise UsageError(f"{source}: keys must be class indices 0..{len(items) - 1} without gaps")
        entries = [v for _, v in items]
    elif isinstance(data, list):
        entries = data
    else:
        raise UsageError(f"{source}: expected a JSON object keyed by class index or a list of classes")
    pairs = [_json_entry(e, f"{source} entry {i}") for i, e in enumerate(entries)]
    return ImageNetClasses(tuple(w for w, _ in pairs), tuple(l for _, l in pairs))


def load_imagenet_classes(source: str | Path | None = None) -> ImageNetClasses:
    """The packaged standard 1000 classes, or a user map (.json, LOC_synset_mapping-style .txt, .tsv)."""
    if source is None:
        text = resources.files("rtool.data").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
        return _from_tsv(text, "imagenet_classes.tsv")
    path = Path(source).expanduser()
    if not path.is_file():
        raise UsageError(f"class map {path}: no such file; expected a class-index .json, LOC_synset_mapping.txt or .tsv")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return _from_json(text, str(path))
    if path.suffix.lower() == ".tsv":
        return _from_tsv(text, str(path))
    return _from_synset_mapping(text, str(path))
