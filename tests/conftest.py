from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "isic_task1_masks"


@pytest.fixture(scope="session")
def real_task1_masks() -> Path:
    """The real ISIC lesion masks shipped beside the repository; tests using it skip when it is absent."""
    if not (REALDATA / "groundtruth").is_dir():
        pytest.skip(f"real ISIC masks not found at {REALDATA}")
    return REALDATA
