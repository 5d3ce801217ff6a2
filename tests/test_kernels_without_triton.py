"""``import zoo`` without Triton: the CPU references run, and ``backend='triton'`` says why it cannot.

Triton ships for Linux only, so the zoo must import and run its PyTorch paths without it. The check runs
in a fresh interpreter whose import system refuses ``triton`` (a meta-path finder raising ImportError).
"""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys


    class NoTriton:
        def find_spec(self, name, path=None, target=None):
            if name == "triton" or name.startswith("triton."):
                raise ModuleNotFoundError(f"No module named {name!r} (refused by the test)", name=name)
            return None


    sys.meta_path.insert(0, NoTriton())

    import torch

    import zoo
    import zoo.kernels
    from zoo.kernels import _triton, correlation, info_nce, temporal_correlation

    assert not _triton.TRITON_AVAILABLE and "triton" not in sys.modules

    torch.manual_seed(0)
    model = zoo.create_model("r2d_18", num_classes=3)
    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 3)

    f1, f2 = torch.randn(2, 2, 8, 6, 7).unbind(0)
    out = correlation(f1, f2, 2, backend="torch")
    assert out.shape == (2, 25, 6, 7)
    torch.testing.assert_close(correlation(f1, f2, 2), out)  # auto: the reference
    x = torch.randn(1, 8, 3, 6, 7)
    assert temporal_correlation(x, 1).shape == (1, 9, 3, 6, 7)
    q, k, t = torch.randn(5, 16), torch.randn(7, 16), torch.arange(5)
    torch.testing.assert_close(info_nce(q, k, t, 0.1), info_nce(q, k, t, 0.1, backend="torch"))

    calls = {
        "correlation": lambda: correlation(f1, f2, 2, backend="triton"),
        "temporal_correlation": lambda: temporal_correlation(x, 1, backend="triton"),
        "info_nce": lambda: info_nce(q, k, t, 0.1, backend="triton"),
    }
    for name, call in calls.items():
        try:
            call()
        except _triton.TritonUnavailableError as err:
            message = str(err)
            assert message.startswith(name + ":"), message
            assert "triton package, which is not installed" in message, message
            assert "backend='torch'" in message, message
        else:
            raise AssertionError(f"{name}(backend='triton') ran without Triton")
    print("OK")
    """
)


def test_import_zoo_without_triton():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "OK"
