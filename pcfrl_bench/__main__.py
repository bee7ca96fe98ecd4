"""``python -m pcfrl_bench`` = ``pcfrl-bench``."""

from .cli import main

main()
