"""Build hook: the registry (``methods/`` and ``tasks/`` at the repository root, its only source) goes into the
wheel as ``pcfrl_bench/resources/methods`` and ``pcfrl_bench/resources/tasks``; everything else is declared in
pyproject.toml. An editable install reads the registry from the checkout (``catalog.registry_root``)."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REGISTRY = ("methods", "tasks")


class BuildPyWithRegistry(build_py):
    """``build_py`` that also copies the registry's YAML files into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder in REGISTRY:
            target = Path(self.build_lib, "pcfrl_bench", "resources", folder)
            self.mkpath(str(target))
            for path in sorted(Path(folder).glob("*.yaml")):
                self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": BuildPyWithRegistry})
