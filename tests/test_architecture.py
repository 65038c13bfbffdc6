"""The import rules hold for every module, and docs/architecture.md's module map is the
code as it is (``devhost/architecture.py`` holds the rules and the generator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhost import architecture
from devhost.architecture import ROOT, imports, module_map, violations, with_map


def test_no_import_goes_against_the_architecture() -> None:
    found = violations(ROOT)
    assert found == [], "imports against the architecture:\n" + "\n".join(found)


def test_the_module_map_in_docs_is_the_code_as_it_is() -> None:
    text = (ROOT / architecture.DOC).read_text()
    assert with_map(text, module_map(ROOT)) == text, "out of date: run python -m devhost.architecture"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if parent != Path("."):
            (root / parent / "__init__.py").touch()
    path.write_text(text)


BAD = {  # file -> (its source, the line number that breaks a rule, what the report must name)
    "shared/domain/money.py": ("import json\nfrom shared.adapters import tables\n", 2, "shared.adapters.tables"),
    "shared/domain/kid.py": ("from ..service.billing import x\n", 1, "shared.service.billing.x"),
    "shared/domain/clockish.py": ("\n\ndef f():\n    import azure.data.tables\n", 4, "azure.data.tables"),
    "shared/domain/web.py": ("import requests\n", 1, "requests"),
    "shared/formats/bgmax.py": ("from . import payments\nfrom ..adapters import codec\n", 2, "shared.adapters.codec"),
    "shared/formats/read.py": ("from azure.storage.blob import BlobClient\n", 1, "azure.storage.blob.BlobClient"),
    "shared/ports.py": ("from typing import Protocol\nfrom .adapters.tables import Storage\n", 2,
                        "shared.adapters.tables.Storage"),
    "shared/service/orders.py": ("from typing import TYPE_CHECKING\n"
                                 "if TYPE_CHECKING:\n    from functions import http\n", 3, "functions.http"),
    "shared/adapters/bus.py": ("from shared.service.context import Context\n", 1, "shared.service.context.Context"),
    "shared/adapters/tables.py": ("import function_app\n", 1, "function_app"),
    "shared/bootstrap.py": ("from devhost import builders\n", 1, "devhost.builders"),
    "functions/merchant_http/__init__.py": ("from tests.fixtures import order\n", 1, "tests.fixtures.order"),
    "function_app.py": ("import bench.common\n", 1, "bench.common"),
    "bench/common.py": ("from tests.conftest import oslo_morning\n", 1, "tests.conftest.oslo_morning"),
}
GOOD = {
    "shared/domain/account.py": "from dateutil.relativedelta import relativedelta\nfrom .money import Money\n"
                                "from shared.domain.kid import KidScheme\n",
    "shared/ports.py": "from .domain.account import Account\nfrom .formats.payments import IncomingPayment\n",
    "shared/formats/ocr_giro.py": "import netsgiro\nfrom .payments import BankFile\nfrom shared.domain import kid\n",
    "shared/service/billing.py": "from ..adapters.tables import Storage\nfrom shared.ports import NotFound\n",
    "shared/adapters/accounts.py": "from ..domain.account import Account\nfrom shared.ports import NotFound\n",
    "functions/run_worker/__init__.py": "from shared.service import billing\nfrom shared.adapters import tables\n",
    "devhost/host.py": "import function_app\nfrom shared.adapters.tables import Storage\n",
    "bench/invoice_run.py": "from devhost.builders import order\nfrom bench.common import shop\n",
    "tests/unit/test_x.py": "from bench.common import shop\nfrom functions import http\n",
}


@pytest.mark.parametrize("bad_file", sorted(BAD))
def test_the_checker_reports_each_kind_of_bad_import_with_file_and_line(tmp_path: Path, bad_file: str) -> None:
    for relative, text in GOOD.items():
        write(tmp_path, relative, text)
    assert violations(tmp_path) == []
    source, line, named = BAD[bad_file]
    write(tmp_path, bad_file, source)
    (report,) = violations(tmp_path)
    assert report.startswith(f"{bad_file}:{line}: ") and f" imports {named} (" in report


def test_the_checker_reports_every_violation_not_only_the_first(tmp_path: Path) -> None:
    for relative, (source, _, _) in BAD.items():
        write(tmp_path, relative, source)
    found = violations(tmp_path)
    assert len(found) == len(BAD), found
    assert {f.split(":")[0] for f in found} == set(BAD)


def test_relative_imports_resolve_against_the_package() -> None:
    path = ROOT / "shared" / "adapters" / "__init__.py"
    assert architecture.module_name(path, ROOT) == "shared.adapters"
    tables = ROOT / "shared" / "adapters" / "tables.py"
    assert all(not name.startswith(".") for _, name in imports(tables, ROOT))


def test_the_map_names_every_module_of_shared_and_functions() -> None:
    generated = module_map(ROOT)
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        if path.read_text().strip():  # an empty __init__.py is no module to describe
            assert f"| `{architecture.module_name(path, ROOT)}` |" in generated, path
