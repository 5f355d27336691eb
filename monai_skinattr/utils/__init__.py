"""Generic utilities with no dataset, network or method knowledge: files written atomically and result tables."""

from .io import (
    file_sha256,
    markdown_table,
    read_metrics_csv,
    remove_partials,
    save_image_atomic,
    save_nifti_atomic,
    staged_folder,
    write_bytes_atomic,
    write_table,
    write_text_atomic,
)

__all__ = [
    "file_sha256",
    "markdown_table",
    "read_metrics_csv",
    "remove_partials",
    "save_image_atomic",
    "save_nifti_atomic",
    "staged_folder",
    "write_bytes_atomic",
    "write_table",
    "write_text_atomic",
]
