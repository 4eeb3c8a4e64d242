"""A Python command as it runs in an install without an optional package: the package cannot be
imported, as tests/deploy/test_lean_install.py hides moto. The benchmark's environment holds
every extra (`dev` includes `k8s`); a production image holds only the ones it needs."""

import sys

_HIDE = """
import sys


class Hidden:
    def find_spec(self, name, path=None, target=None):
        if name == {package!r} or name.startswith({package!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Hidden())
"""

# dagster-k8s, the `k8s` extra: the job's executor offers `k8s` only when it imports.
K8S_EXTRA = "dagster_k8s"


def python_without(package: str, code: str, *args: str) -> list[str]:
    """The command running `code` (then `args` as its sys.argv[1:]) with `package` hidden."""
    return [sys.executable, "-c", _HIDE.format(package=package) + code, *args]


def cli_without(package: str, *args: str) -> list[str]:
    """`cleanup-pipeline <args>` with `package` hidden."""
    code = "import runpy\nrunpy.run_module('cleanup_pipeline.cli.main', run_name='__main__')\n"
    return python_without(package, code, *args)
