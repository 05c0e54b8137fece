"""Bootstrap pip into an empty virtual environment made by ansible-test.

ansible-test downloads its pip bootstrap script from a host outside the package registries this
project may use. It runs the script as ``python get_pip.py [pip options] pip==X ...`` with the
new environment's interpreter and reuses a cached copy when one exists. The Makefile places this
file in that cache: it installs pip from the interpreter's own ensurepip, then the requested
packages from PyPI.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"],
                      stdout=subprocess.DEVNULL)
arguments = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + arguments)
