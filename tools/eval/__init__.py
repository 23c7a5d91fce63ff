"""Evaluation: the pack reports (digits, papers, photo, realistic, stills, sweeps, lens) that `python -m tools.eval`
writes under reports/.

May import: tools.data, tools.train and deblurd.
"""
