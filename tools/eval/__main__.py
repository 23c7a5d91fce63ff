"""`python -m tools.eval`: evaluate a pack and write its report."""

from tools.eval.evaluate import main

main()
