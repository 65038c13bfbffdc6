"""Bank file formats: read any incoming bank file with ``read_bank_file`` (``.read``)."""

from .read import read_bank_file

__all__ = ["read_bank_file"]
