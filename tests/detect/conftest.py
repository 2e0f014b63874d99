import pytest

from fixtures.detect_run import fit_eval_predict


@pytest.fixture(scope="session")
def fitted_run(tmp_path_factory):
    """One tiny fit -> eval -> predict of the embedded default, shared by the detect tests."""
    return fit_eval_predict(tmp_path_factory.mktemp("detect-run"))
