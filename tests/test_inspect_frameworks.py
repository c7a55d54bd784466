"""`refcheck inspect` names the deep-learning frameworks an implementation imports, and says that its
cases fail unless --allow-frameworks, before anyone runs a sweep."""
from __future__ import annotations

import textwrap
from pathlib import Path

from refcheck.cli import main

HOSTILE = Path(__file__).parent / "impls_hostile"


def _inspect(capsys, path: Path) -> str:
    assert main(["inspect", "--impl", str(path)]) == 0
    return capsys.readouterr().out


def test_a_module_that_imports_torch_is_told_so(capsys):
    text = _inspect(capsys, HOSTILE / "uses_torch.py")
    assert "Frameworks: your code imports torch." in text
    assert "fails" in text and "unless you pass --allow-frameworks" in text
    assert "relu:" in text  # the layers are still listed


def test_a_framework_imported_by_a_module_of_a_package_is_found(tmp_path, capsys):
    package = tmp_path / "mynet"
    package.mkdir()
    (package / "__init__.py").write_text("from .activations import relu_forward, relu_backward\n", encoding="utf-8")
    (package / "activations.py").write_text(textwrap.dedent("""
        import numpy as np
        from torch.nn import functional

        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dout, x):
            return dout * (x > 0)
    """), encoding="utf-8")
    text = _inspect(capsys, package)
    assert "Frameworks: your code imports torch." in text


def test_numpy_code_gets_no_framework_note(tmp_path, capsys):
    path = tmp_path / "plain.py"
    path.write_text("import numpy as np\n\ndef relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
                    "def relu_backward(dout, x):\n    return dout * (x > 0)\n", encoding="utf-8")
    text = _inspect(capsys, path)
    assert "relu:" in text and "Frameworks" not in text and "--allow-frameworks" not in text
