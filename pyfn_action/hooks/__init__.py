"""pre-commit hooks: one module per hook, each a pure worker plus ``main(argv) -> int``."""
