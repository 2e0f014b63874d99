"""Label change rate of 20 mutants of the corner ConvNet on 1,000 inputs: `rtool.detect.label_change_rate`
(mutants regenerated from seeds; on a CPU only the changed channels propagate through the fx graph, decisions too
close to call are recomputed densely) vs a loop over deep-copied mutants (one full model copy and forward pass per
mutant). The LCRs must be identical.

Smoke run with tiny sizes: `RTOOL_BENCH_TINY=1 python -m pytest bench/test_detect_lcr.py`.
"""
import copy
import os

import pytest
import torch

from rtool.data import load_digits
from rtool.detect import MutantSet, MutationSettings, label_change_rate, mutant_parameters
from rtool.detect.mutation import candidate_seed
from rtool.models import CornerConvNet

TINY = os.environ.get("RTOOL_BENCH_TINY") == "1"
MUTANTS, INPUTS = (3, 40) if TINY else (20, 1000)
SETTINGS = MutationSettings(operator="NAI", gamma=0.03, target_mutants=MUTANTS)
RESULTS: dict[str, torch.Tensor] = {}


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    model = CornerConvNet().eval()  # the weights do not change the cost; LCR equality holds for any weights
    images = load_digits("train").images[:INPUTS]
    mutants = MutantSet(settings=SETTINGS, seeds=tuple(candidate_seed(0, i) for i in range(MUTANTS)),
                        accuracies=(1.0,) * MUTANTS, original_accuracy=1.0, candidates_drawn=MUTANTS)
    return model, images, mutants


def deep_copy_loop(model, images, mutants, batch=256):
    with torch.no_grad():
        original = torch.cat([model(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
        changed = torch.zeros(len(images), dtype=torch.float64)
        for seed in mutants.seeds:
            mutant = copy.deepcopy(model)
            params = dict(mutant.named_parameters())
            for name, value in mutant_parameters(model, SETTINGS.operator, SETTINGS.gamma, seed).items():
                params[name].copy_(value)
            preds = torch.cat([mutant(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
            changed += (preds != original).double()
    return changed / len(mutants.seeds)


@pytest.mark.parametrize("implementation", ["rtool", "deep-copy-loop"])
def test_lcr(benchmark, case, implementation):
    model, images, mutants = case
    benchmark.group = f"lcr corner_convnet {MUTANTS} mutants x {INPUTS} inputs"
    rechecked = []
    if implementation == "rtool":
        def run():
            result = label_change_rate(model, mutants, images)
            rechecked.append(result.rechecked)
            return result.lcr
    else:
        run = lambda: deep_copy_loop(model, images, mutants)  # noqa: E731
    lcr = benchmark.pedantic(run, rounds=1 if TINY else 3, warmup_rounds=0)
    RESULTS[implementation] = lcr
    benchmark.extra_info.update(threads=torch.get_num_threads(), loadavg=os.getloadavg(),
                                mean_lcr=float(lcr.mean()))
    if rechecked:  # the fraction of (mutant, input) decisions the fast path left to the dense path
        benchmark.extra_info["rechecked"] = rechecked[-1]
    if len(RESULTS) == 2:
        assert torch.equal(RESULTS["rtool"], RESULTS["deep-copy-loop"])
