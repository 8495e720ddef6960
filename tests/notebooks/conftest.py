"""A checkout as an analyst opens it: the committed notebooks beside the bundled data.

The notebooks are copied (a run or an autosave must never write into the repository's
notebooks) and `data/` is linked, so their default `../data/...` paths resolve as they
do in a clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with `notebooks/` (copies of the committed .ipynb files) and `data/`."""
    root = tmp_path_factory.mktemp("checkout")
    (root / "notebooks").mkdir()
    for notebook in NOTEBOOKS:
        shutil.copy2(notebook, root / "notebooks" / notebook.name)
    (root / "data").symlink_to(REPO / "data", target_is_directory=True)
    return root
