"""`rtool detect`: find the predictions to distrust (layer conductance + label change rate of mutants)."""
from rtool.detect.conductance import (INTEGRATION_METHODS, METHODS, Conductance, ConductanceSettings,
                                      closed_form_head, layer_conductance)
from rtool.detect.mutation import (OPERATORS, LabelChangeRate, MutantSet, MutationSettings, accepted_mutants,
                                   label_change_rate, mutant_parameters)

__all__ = ["INTEGRATION_METHODS", "METHODS", "OPERATORS", "Conductance", "ConductanceSettings", "LabelChangeRate",
           "MutantSet", "MutationSettings", "accepted_mutants", "closed_form_head", "label_change_rate",
           "layer_conductance", "mutant_parameters"]
