"""reaxgrad.md: periodic space and neighbour lists (``space``, ``neighbors``), ReaxFF along
trajectories with reused lists (``forces``), integrators as (init, step) pairs
(``dynamics``: NVE, Langevin, Nosé–Hoover chain, Berendsen NVT/NPT) and the run loop with
observers and checkpoints (``simulate``), batched minimisers (``minimize``: FIRE, L-BFGS),
Hessians and normal modes (``vibrations``), reactive analysis (``species``: molecules and bond
tables as LAMMPS's fix reaxff/species and fix reaxff/bonds) and the ASE calculator
(``calculator``). Units: LAMMPS ``real`` inside (``units``), ASE's at the calculator."""
