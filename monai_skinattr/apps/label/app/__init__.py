"""The folder passed to ``monailabel start_server --app``: MONAI Label loads its ``main.py``."""
