"""Datasets for the analyses: real formats (ImageNet val, Pascal VOC, user folders) and the embedded `shapes`.

Every box dataset follows one protocol (rtool.data.protocol): `BoxSample` items, `class_names`, and where it
can `keys`, `labels`, `mean`, `std`, `skipped`, `multi_label`.
Every classification dataset (`digits`, `mnist`, `cifar10`, `folder`) loads through `load_classification` into a
`ClassificationData` (images float32 [N, C, H, W] in [0, 1], labels int64 [N]; see rtool/data/classification.py).
"""
from rtool.data.cifar import CIFAR10_CLASSES, SafeUnpickler, load_cifar10, read_cifar_batch, safe_unpickle
from rtool.data.classification import ClassificationData, ClassificationDataset
from rtool.data.classification_catalog import CLASSIFICATION_DATASETS, load_classification
from rtool.data.classification_folder import load_image_folder
from rtool.data.digits import DIGITS_CLASSES, load_digits
from rtool.data.folder import BoxFolder
from rtool.data.image_files import ImageFiles, load_image_files
from rtool.data.idx import idx_bytes, read_idx
from rtool.data.mnist import MNIST_CLASSES, load_mnist, mnist_files
from rtool.data.imagenet import ImageNetVal
from rtool.data.imagenet_classes import ImageNetClasses, csv_name, load_imagenet_classes
from rtool.data.protocol import (BoxDatasetLike, dataset_fingerprint, dataset_labels, is_multi_label, key_index,
                                 normalisation, skipped_items)
from rtool.data.request import BOX_DATASETS, DataRequest, open_box_dataset
from rtool.data.sample import BoxBatch, BoxSample, box_area_fraction, collate_samples, union_mask
from rtool.data.shapes import (ShapesConfig, ShapesData, ShapesDataset, channel_stats, generate_shapes, load_shapes,
                               write_folder)
from rtool.data.transforms import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, Preprocess
from rtool.data.voc import VOC_CLASSES, VOCPairs

__all__ = [
    "BOX_DATASETS", "BoxDatasetLike", "DataRequest", "dataset_fingerprint", "dataset_labels", "is_multi_label",
    "key_index", "normalisation", "open_box_dataset", "skipped_items",
    "CIFAR10_CLASSES", "CLASSIFICATION_DATASETS", "ClassificationData", "ClassificationDataset", "DIGITS_CLASSES",
    "ImageFiles", "MNIST_CLASSES", "SafeUnpickler", "idx_bytes", "load_cifar10", "load_classification", "load_digits",
    "load_image_folder", "load_mnist", "mnist_files", "read_cifar_batch", "read_idx", "safe_unpickle",
    "BoxBatch", "BoxFolder", "BoxSample", "CIFAR10_MEAN", "CIFAR10_STD", "IMAGENET_MEAN", "IMAGENET_STD",
    "ImageNetClasses", "ImageNetVal", "Preprocess", "ShapesConfig", "ShapesData", "ShapesDataset", "VOCPairs",
    "VOC_CLASSES", "box_area_fraction", "channel_stats", "collate_samples", "csv_name", "generate_shapes",
    "load_image_files", "load_imagenet_classes", "load_shapes", "union_mask", "write_folder",
]
