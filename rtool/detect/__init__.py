"""`rtool detect`: find the predictions to distrust (layer conductance + label change rate of mutants)."""
from rtool.detect.conductance import (INTEGRATION_METHODS, METHODS, Conductance, ConductanceSettings,
                                      closed_form_head, layer_conductance)
from rtool.detect.detector import (COMBINED_SETTINGS, DetectorSettings, Metrics, MLPDetector, aurc, baseline_scores,
                                   detection_metrics, detector_scores, equal_recall_threshold, fit_detector)
from rtool.detect.evaluation import (BASELINES, DETECTORS, DetectionResult, FittedDetectors, evaluate_detectors,
                                     fit_detectors, score_features)
from rtool.detect.experiment import (DetectExperiment, DetectSettings, detect_layer, run, split_features,
                                     split_validation, validation_mutants)
from rtool.detect.export import DeployedDetector, export_detector
from rtool.detect.features import Features, extract_features
from rtool.detect.fitted import SCORES, FittedDetector, SplitEvaluation, evaluate, fit
from rtool.detect.mutation import (OPERATORS, LabelChangeRate, MutantSet, MutationSettings, accepted_mutants,
                                   label_change_rate, mutant_parameters)
from rtool.detect.saved import load_detector, save_detector
from rtool.detect.sharded import sharded_features, sharded_mutants, tensor_fingerprint

__all__ = ["BASELINES", "COMBINED_SETTINGS", "DETECTORS", "INTEGRATION_METHODS", "METHODS", "OPERATORS", "SCORES",
           "FittedDetector", "FittedDetectors", "SplitEvaluation", "detect_layer", "evaluate", "fit", "fit_detectors",
           "load_detector", "save_detector", "score_features", "sharded_features", "sharded_mutants",
           "split_features", "split_validation", "tensor_fingerprint", "validation_mutants",
           "Conductance", "ConductanceSettings", "DetectExperiment", "DetectSettings", "DetectionResult", "DeployedDetector", "DetectorSettings", "Features",
           "LabelChangeRate", "MLPDetector", "Metrics", "MutantSet", "MutationSettings", "accepted_mutants", "aurc",
           "baseline_scores", "closed_form_head", "detection_metrics", "detector_scores", "equal_recall_threshold",
           "evaluate_detectors", "export_detector", "extract_features", "fit_detector", "label_change_rate", "layer_conductance",
           "mutant_parameters", "run"]
