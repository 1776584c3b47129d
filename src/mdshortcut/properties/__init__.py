"""Physical quantities of structures, shared by labelling and evaluation.

``elastic`` (relaxation, relaxed-ion shear constants), ``rings`` (ring sizes), ``structure``
(RDF, ADF, RMSD) and ``labels`` (one row of properties per structure).
"""
