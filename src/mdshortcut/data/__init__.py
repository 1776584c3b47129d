"""Training data: ghost-atom padding and tensors (``ghost``, ``build``), torch datasets."""
