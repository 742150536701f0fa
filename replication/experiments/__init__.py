"""One module per notebook; each measures its notebook's claims.

architecture (notebook 01: Section 3 and Fig. 2, exact counts on the paper's
net, no training).
"""
