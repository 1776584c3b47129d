"""Benchmarks of the pipeline's computational kernels, one module per benchmark (each bench rule's
``code=`` input is its module and what that imports, so an edit reruns only the benchmarks it
can change): ``model`` (a sampling step, optimised paths against the straightforward one),
``train`` (training steps, fused EGNN against straightforward), ``sampler`` (whole sampling runs
of every process), ``md`` (a melt-quench replica, LAMMPS vs Python), ``properties``
(relaxations and labels per minute); ``common`` holds their config and test inputs."""
