"""Package layout: every vaultsh package, plus the top-level themes/ folder shipped as vaultsh/themes."""

from setuptools import find_packages, setup

setup(
    # The built-in themes sit next to vaultsh/ in the repository (users and packagers find them
    # there); inside the wheel they become the data-only package vaultsh.themes.
    packages=[*find_packages(include=["vaultsh*"]), "vaultsh.themes"],
    package_dir={"vaultsh.themes": "themes"},
    package_data={"vaultsh.themes": ["*.toml"], "vaultsh.tui": ["*.tcss"]},
)
