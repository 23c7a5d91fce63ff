"""`python -m tools.train`: the CPU trainer."""

from tools.train.cpu import main

main()
