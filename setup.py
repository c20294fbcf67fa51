"""Maps the one import namespace ``resilq`` onto the repository's top-level folders.

The folders follow the data flow of the design card (analysis -> hls -> overlays -> boards -> deploy);
``resilq`` itself is ``analysis/``. Everything else about the package is in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = {"resilq": "analysis", "resilq.hls": "hls", "resilq.boards": "boards", "resilq.overlays": "overlays",
         "resilq.deploy": "deploy"}

packages, package_dir = [], {}
for package, folder in ROOTS.items():
    package_dir[package] = folder
    packages.append(package)
    packages += [f"{package}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
