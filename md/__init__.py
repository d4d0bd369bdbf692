"""reaxgrad.md: periodic space, neighbour lists, batched minimisers (FIRE, L-BFGS) and the ASE
calculator; MD integrators come with the MD issue."""
