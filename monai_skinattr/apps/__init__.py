"""Method packages: what only one method needs, built on the generic library (MONAI's ``monai/apps`` layout)."""
