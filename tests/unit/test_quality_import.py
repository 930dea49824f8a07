"""DAG files import ingestion.quality at parse time: that must not import Great Expectations."""

import subprocess
import sys

import pytest


def test_importing_the_gate_module_does_not_import_gx():
    code = ("import sys, ingestion.quality as q; assert callable(q.run_gate);"
            " print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unknown_layer_is_rejected():
    from ingestion import quality

    with pytest.raises(ValueError, match="use 'raw' or 'mart'"):
        quality.suites("staging")
