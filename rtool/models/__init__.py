"""Models: the torchvision zoo by name (offline weights), rtool's small models, layer lookup, training and caching."""
from rtool.models.corner import (
    DIGITS_EPOCHS,
    MNIST_EPOCHS,
    CornerTraining,
    build_corner_model,
    classification_accuracy,
    corner_model_key,
    corner_training,
    digits_model,
    train_corner_model,
)
from rtool.models.layers import default_target_layer, get_layer, layer_names, normalize_layer_path
from rtool.models.request import (LoadedModel, ModelRequest, check_labels_fit, load_model, model_fingerprint,
                                  preprocess_for, resolve_layer)
from rtool.models.small import CornerConvNet, ShapesCNN
from rtool.models.train import cached_model, train_classifier
from rtool.models.zoo import (
    MODEL_NAMES,
    SMALL_MODELS,
    TORCHVISION_MODELS,
    TransformSpec,
    build_model,
    check_model_name,
    input_normalization,
    eval_transform_spec,
    hub_checkpoint_path,
    num_classes_of,
    read_state_dict,
    weights_enum,
)

__all__ = [
    "LoadedModel", "ModelRequest", "check_labels_fit", "load_model", "model_fingerprint", "preprocess_for",
    "resolve_layer",
    "DIGITS_EPOCHS", "MNIST_EPOCHS", "CornerTraining", "build_corner_model", "classification_accuracy",
    "corner_model_key", "corner_training", "digits_model", "train_corner_model",
    "MODEL_NAMES", "SMALL_MODELS", "TORCHVISION_MODELS", "CornerConvNet", "ShapesCNN", "TransformSpec",
    "build_model", "cached_model", "check_model_name", "input_normalization", "default_target_layer", "eval_transform_spec", "get_layer",
    "hub_checkpoint_path", "layer_names", "normalize_layer_path", "num_classes_of", "read_state_dict",
    "train_classifier", "weights_enum",
]
