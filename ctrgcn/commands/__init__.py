"""The command-line commands of ``python -m ctrgcn``, one module each (see ``ctrgcn/__main__.py``)."""
