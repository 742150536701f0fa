"""Sections 5-6 of the paper: how a net is trained and tested.

config (the typed training config and its hash), optim (the paper's SGD and its
schedule), trainer (the loop and its checkpoints), distributed (DDP over several
devices), evaluate (centre and ten-crop tests, ensembles, features), runs (the
run store: a config -> its hash -> runs/<hash>/), final (what is measured when a
net finishes), figures (Figs. 3 and 4: kernels, FC7 neighbours), plots (a run's
figures from plain arrays), run_figures (a stored run's figures as PNGs).
"""
