"""`python -m tools.bench`: the model benchmark."""

from tools.bench.benchmark import main

main()
