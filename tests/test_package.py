import subprocess
import sys

import zenrec


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, zenrec, zenrec.data, zenrec.models, zenrec.evaluation, zenrec.cli.main;"
        "zenrec.cli.main.build_parser();"
        "bad=[m for m in ('torch','fastapi','matplotlib','optuna','statsforecast','implicit') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_and_cli_version(capsys):
    from zenrec.cli.main import main

    assert zenrec.__version__.count(".") == 2
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert zenrec.__version__ in capsys.readouterr().out


def test_error_hierarchy():
    for cls in (zenrec.DataError, zenrec.ConfigError, zenrec.NotFittedError, zenrec.BundleError):
        assert issubclass(cls, zenrec.ZenrecError)
