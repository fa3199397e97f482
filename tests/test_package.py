import subprocess
import sys

import pytest

import zenrec


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, zenrec, zenrec.data, zenrec.models, zenrec.evaluation, zenrec.cli.main;"
        "zenrec.cli.main.build_parser();"
        "bad=[m for m in ('torch','fastapi','matplotlib','optuna','statsforecast','implicit')"
        " if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_and_cli_version(capsys):
    from zenrec.cli.main import main

    assert zenrec.__version__.count(".") == 2
    # argparse's version action prints and exits 0; a main that returns instead fails here
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"zenrec {zenrec.__version__}"


def test_error_hierarchy():
    for cls in (zenrec.DataError, zenrec.ConfigError, zenrec.NotFittedError, zenrec.BundleError):
        assert issubclass(cls, zenrec.ZenrecError)
