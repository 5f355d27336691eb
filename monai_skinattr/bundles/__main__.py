"""``python -m monai_skinattr.bundles list | init <name> <folder>``."""

from monai_skinattr.bundles import main

if __name__ == "__main__":
    main()
